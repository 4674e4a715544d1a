using System.Text;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence.Sql;

namespace Scst.Host.Cluster;

/// <summary>
/// Builds the one Akka config a node runs with: hocon/base.conf, cluster.conf, persistence-&lt;backend&gt;.conf,
/// fast-failure.conf (if asked), the --hocon files in order, then the command-line overrides. Later wins.
/// </summary>
public static class HoconLoader
{
    public static readonly string[] Backends = ["sqlite", "postgresql"];

    public static Config Load(NodeOptions options)
    {
        var dir = FindHoconDir(options.HoconDir);
        Config user = ConfigurationFactory.Empty;
        // Parse every layer first so a bad file is reported by name, then stack them (later wins).
        var layers = new List<Config> { ParseFile(Path.Combine(dir, "base.conf")), ParseFile(Path.Combine(dir, "cluster.conf")) };
        if (options.FastFailure) layers.Add(ParseFile(Path.Combine(dir, "fast-failure.conf")));
        if (options.TlsCertificate is not null) layers.Add(ParseFile(Path.Combine(dir, "tls.conf")));
        foreach (var f in options.ExtraHoconFiles)
        {
            if (!File.Exists(f)) throw new FileNotFoundException($"--hocon file '{f}' does not exist", f);
            user = ParseFile(f).WithFallback(user);
        }

        Config layered = ConfigurationFactory.Empty;
        foreach (var l in layers) layered = l.WithFallback(layered);
        var merged = user.WithFallback(layered);

        var backend = merged.GetString("scst.persistence.backend", "sqlite").Trim().ToLowerInvariant();
        if (backend == "postgres") backend = "postgresql";
        if (!Backends.Contains(backend))
            throw new ConfigurationException($"scst.persistence.backend = '{backend}' is not one of: {string.Join(", ", Backends)}");
        var persistence = ParseFile(Path.Combine(dir, backend == "sqlite" ? "persistence-sqlite.conf" : "persistence-postgres.conf"));
        // Persistence sits under fast-failure/user layers so a --hocon file can still tune the plugins.
        // (Stacking user over a config that already holds it made Akka's HOCON merge recurse forever on ${?ENV} substitutions.)
        merged = user.WithFallback(layered).WithFallback(persistence);

        var overrides = BuildOverrides(options, backend, merged);
        return overrides.WithFallback(merged).WithFallback(SqlPersistence.DefaultConfiguration);
    }

    static Config BuildOverrides(NodeOptions options, string backend, Config merged)
    {
        var sb = new StringBuilder();
        var roles = options.ClusterRoles;
        sb.AppendLine($"akka.cluster.roles = [{string.Join(", ", roles.Select(Quote))}]");
        if (options.Port is { } port)
        {
            if (port is < 0 or > 65535) throw new ArgumentException($"--port {port} is outside 0..65535");
            sb.AppendLine($"akka.remote.dot-netty.tcp.port = {port}");
        }
        if (options.TlsCertificate is not null)
        {
            sb.AppendLine($"scst.tls.certificate = {Quote(Path.GetFullPath(options.TlsCertificate))}");
            if (options.TlsCa is not null) sb.AppendLine($"scst.tls.ca = {Quote(Path.GetFullPath(options.TlsCa))}");
            if (options.TlsPasswordVariable is not null) sb.AppendLine($"scst.tls.password-env = {Quote(options.TlsPasswordVariable)}");
        }
        if (options.SeedNodes.Count > 0)
        {
            var tls = options.TlsCertificate is not null || merged.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl", false);
            foreach (var s in options.SeedNodes) ValidateSeed(s, tls);
            sb.AppendLine($"akka.cluster.seed-nodes = [{string.Join(", ", options.SeedNodes.Select(Quote))}]");
        }

        string journalCs, snapshotCs;
        if (backend == "sqlite")
        {
            var runDir = Path.GetFullPath(options.RunDir);
            journalCs = $"Data Source={Path.Combine(runDir, "journal.db")}";
            snapshotCs = $"Data Source={Path.Combine(runDir, "snapshots.db")}";
            sb.AppendLine($"scst.persistence.sqlite-journal-file = {Quote(Path.Combine(runDir, "journal.db"))}");
            sb.AppendLine($"scst.persistence.sqlite-snapshot-file = {Quote(Path.Combine(runDir, "snapshots.db"))}");
        }
        else
        {
            var cs = merged.GetString("scst.persistence.connection-string", "");
            if (string.IsNullOrWhiteSpace(cs))
                throw new ConfigurationException(
                    "scst.persistence.backend = postgresql needs scst.persistence.connection-string (e.g. \"Host=127.0.0.1;Port=5432;Database=scst;Username=scst;Password=...\") in a --hocon file");
            journalCs = snapshotCs = cs;
        }
        sb.AppendLine($"scst.persistence.backend = {backend}");
        sb.AppendLine($"scst.run-dir = {Quote(Path.GetFullPath(options.RunDir))}");
        sb.AppendLine($"akka.persistence.journal.sql.connection-string = {Quote(journalCs)}");
        sb.AppendLine($"akka.persistence.snapshot-store.sql.connection-string = {Quote(snapshotCs)}");
        return ConfigurationFactory.ParseString(sb.ToString());
    }

    static void ValidateSeed(string seed, bool tls)
    {
        Address a;
        try { a = Address.Parse(seed); }
        catch (Exception e) { throw new ArgumentException($"--seed-nodes '{seed}' is not an Akka address like akka.tcp://{NodeOptions.SystemName}@127.0.0.1:4053 ({e.Message})"); }
        if (a.System != NodeOptions.SystemName)
            throw new ArgumentException($"--seed-nodes '{seed}' names actor system '{a.System}'; every Scst node runs '{NodeOptions.SystemName}'");
        if (a.Port is null or 0) throw new ArgumentException($"--seed-nodes '{seed}' needs an explicit port");
        if (a.Protocol != (tls ? "akka.ssl.tcp" : "akka.tcp"))
            throw new ArgumentException(tls
                ? $"--seed-nodes '{seed}': this node speaks TLS, so its seeds are akka.ssl.tcp://{NodeOptions.SystemName}@HOST:PORT"
                : $"--seed-nodes '{seed}': this node speaks plain TCP (no TLS certificate), so its seeds are akka.tcp://{NodeOptions.SystemName}@HOST:PORT");
    }

    static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    static Config ParseFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"HOCON file '{path}' is missing", path);
        try { return ConfigurationFactory.ParseString(File.ReadAllText(path)); }
        catch (Exception e) { throw new ConfigurationException($"HOCON file '{path}' does not parse: {e.Message}", e); }
    }

    /// <summary>hocon/ beside the app (copied by the build), else under the working directory.</summary>
    public static string FindHoconDir(string? explicitDir = null)
    {
        if (explicitDir is not null)
            return File.Exists(Path.Combine(explicitDir, "base.conf")) ? explicitDir
                : throw new DirectoryNotFoundException($"HOCON folder '{explicitDir}' has no base.conf");
        foreach (var d in new[] { Path.Combine(AppContext.BaseDirectory, "hocon"), Path.Combine(Directory.GetCurrentDirectory(), "hocon") })
            if (File.Exists(Path.Combine(d, "base.conf"))) return d;
        throw new DirectoryNotFoundException($"no hocon/base.conf beside {AppContext.BaseDirectory} or in {Directory.GetCurrentDirectory()}");
    }
}
