using Akka.Actor;
using Akka.Configuration;

namespace Scst.Host.Cluster;

public enum JournalBackend { Sqlite, PostgreSql }

/// <summary>
/// Every setting of a cluster node and its SCST actors, each with its one default here. Filled by <see cref="From"/>
/// in order: these defaults, the user's --hocon files (the keys documented in docs/cluster.md), the command-line flags.
/// <see cref="ScstAkka"/> turns it into the Akka.Hosting calls; the actors' settings records are built from it.
/// </summary>
public sealed record ScstClusterOptions
{
    /// <summary>learner | rollout | reward | all | status (see <see cref="NodeOptions.ClusterRoles"/>).</summary>
    public string Role { get; init; } = "all";
    public IReadOnlyList<string> Roles { get; init; } = ["learner", "rollout", "reward"];
    public string RunDir { get; init; } = Path.GetFullPath(Path.Combine("runs", "default"));

    // akka.remote.dot-netty.tcp: nothing listens beyond loopback unless a --hocon file says otherwise.
    public string Hostname { get; init; } = "127.0.0.1";
    public string? PublicHostname { get; init; }
    /// <summary>0 = any free port.</summary>
    public int Port { get; init; }
    /// <summary>Bytes; a weight announcement (up to 64 KiB of chunk hashes) must stay well under it.</summary>
    public int MaximumFrameSize { get; init; } = 128_000;
    public IReadOnlyList<string> SeedNodes { get; init; } = [];
    /// <summary>Shorter failure detection and split-brain-resolver wait (hocon/fast-failure.conf), for tests and drills.</summary>
    public bool FastFailure { get; init; }

    public JournalBackend Backend { get; init; } = JournalBackend.Sqlite;
    /// <summary>PostgreSQL only; SQLite uses <see cref="JournalFile"/> and <see cref="SnapshotFile"/> in the run folder.</summary>
    public string ConnectionString { get; init; } = "";
    public string JournalFile => Path.Combine(RunDir, "journal.db");
    /// <summary>A separate file, so journal and snapshot writers never contend for one SQLite write lock.</summary>
    public string SnapshotFile => Path.Combine(RunDir, "snapshots.db");

    /// <summary>PKCS#12 file with this node's certificate and key; set, the node speaks only mutual TLS.</summary>
    public string? TlsCertificate { get; init; }
    /// <summary>CA every peer must chain to; null trusts the machine's store.</summary>
    public string? TlsCa { get; init; }
    /// <summary>Environment variable holding the .pfx password (the password never goes in a file).</summary>
    public string TlsPasswordVariable { get; init; } = "SCST_TLS_PASSWORD";
    public bool Tls => TlsCertificate is not null;

    /// <summary>Rollout actors (policy replicas) per rollout / all node when <see cref="RolloutDevices"/> is unset; CPU slots for <c>all</c> without CUDA.</summary>
    public int RolloutActors { get; init; } = 1;
    /// <summary><c>scst.rollout.devices</c>: a list (cuda:N, cpu:N) or ["all"]; null = unset (see Scst.Actors.Pipeline.RolloutDevices).</summary>
    public IReadOnlyList<string>? RolloutDevices { get; init; }
    /// <summary><c>scst.rollout.memory-budget</c>: bytes a shared rollout actor may hold on its device (base + run overlays); 0 = no limit.</summary>
    public long RolloutMemoryBudget { get; init; }
    /// <summary><c>scst.rollout.run-weights</c>: run id to its share of a shared rollout actor (1 unless listed).</summary>
    public IReadOnlyDictionary<string, double> RolloutRunWeights { get; init; } = new Dictionary<string, double>();
    /// <summary>Reward actors per pool; 0 = one per core.</summary>
    public int RewardPoolSize { get; init; }
    public int RewardActors => RewardPoolSize > 0 ? RewardPoolSize : Environment.ProcessorCount;
    /// <summary>A rollout or score request unanswered this long is handed to another worker.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Async mode: rollout requests queued per worker.</summary>
    public int InFlightPerWorker { get; init; } = 2;
    /// <summary>Async mode: weights published every N updates.</summary>
    public int AsyncPublishEvery { get; init; } = 1;
    /// <summary>Port of the learner node's weight server (HTTP, or HTTPS under TLS); 0 = any free port.</summary>
    public int WeightPort { get; init; }
    /// <summary>Also check each fetched file's whole SHA-256 (each chunk's SHA-256 already covers every byte; this hashes every byte twice).</summary>
    public bool WeightVerifyWholeFile { get; init; }
    /// <summary><c>auto</c>: weight files carry linear layers in the amp dtype rollouts compute in (bf16 under amp); <c>fp32</c>: as held.</summary>
    public string WeightDType { get; init; } = "auto";
    /// <summary>Tries in a row without progress before a weight fetch is reported failed.</summary>
    public int WeightFetchAttempts { get; init; } = 5;
    /// <summary>Published weight files kept on the learner.</summary>
    public int WeightKeepVersions { get; init; } = 2;

    /// <summary>The user's --hocon files merged (later wins): the akka.* tuning Akka.Hosting has no option for goes to Akka as is.</summary>
    public Config UserHocon { get; init; } = ConfigurationFactory.Empty;
    public string? HoconDir { get; init; }

    /// <summary>Defaults, then the --hocon files, then the flags in <paramref name="node"/>.</summary>
    public static ScstClusterOptions From(NodeOptions node)
    {
        var roles = node.ClusterRoles;
        var user = HoconLoader.LoadUserFiles(node.ExtraHoconFiles, RefuseUnknownKeys);
        var d = new ScstClusterOptions();
        var backendName = user.GetString("scst.persistence.backend", "sqlite").Trim().ToLowerInvariant();
        var backend = backendName switch
        {
            "sqlite" => JournalBackend.Sqlite,
            "postgresql" or "postgres" => JournalBackend.PostgreSql,
            _ => throw new ConfigurationException($"scst.persistence.backend = '{backendName}' is not one of: sqlite, postgresql"),
        };
        var cs = user.GetString("scst.persistence.connection-string", "");
        if (backend == JournalBackend.PostgreSql && string.IsNullOrWhiteSpace(cs))
            throw new ConfigurationException(
                "scst.persistence.backend = postgresql needs scst.persistence.connection-string (e.g. \"Host=127.0.0.1;Port=5432;Database=scst;Username=scst;Password=...\") in a --hocon file");

        var tlsCert = node.TlsCertificate is { } c ? Path.GetFullPath(c) : NonEmpty(user.GetString("scst.tls.certificate", ""));
        var o = d with
        {
            Role = node.Role,
            Roles = roles,
            RunDir = Path.GetFullPath(node.RunDir),
            HoconDir = node.HoconDir,
            UserHocon = user,
            FastFailure = node.FastFailure,
            Hostname = user.GetString("akka.remote.dot-netty.tcp.hostname", d.Hostname),
            PublicHostname = NonEmpty(user.GetString("akka.remote.dot-netty.tcp.public-hostname", "")),
            Port = node.Port ?? user.GetInt("akka.remote.dot-netty.tcp.port", d.Port),
            MaximumFrameSize = (int)(user.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size") ?? d.MaximumFrameSize),
            SeedNodes = node.SeedNodes.Count > 0 ? node.SeedNodes : user.GetStringList("akka.cluster.seed-nodes", []).ToArray(),
            Backend = backend,
            ConnectionString = backend == JournalBackend.PostgreSql ? cs : "",
            TlsCertificate = tlsCert,
            TlsCa = node.TlsCa is { } ca ? Path.GetFullPath(ca) : NonEmpty(user.GetString("scst.tls.ca", "")),
            TlsPasswordVariable = node.TlsPasswordVariable ?? user.GetString("scst.tls.password-env", d.TlsPasswordVariable),
            RolloutActors = Math.Max(1, user.GetInt("scst.rollout.actors", d.RolloutActors)),
            RolloutDevices = DevicesSetting(user),
            RolloutMemoryBudget = user.HasPath("scst.rollout.memory-budget") ? user.GetByteSize("scst.rollout.memory-budget") ?? 0 : d.RolloutMemoryBudget,
            RolloutRunWeights = RunWeightsSetting(user),
            RewardPoolSize = user.GetInt("scst.reward.pool-size", d.RewardPoolSize),
            RequestTimeout = user.GetTimeSpan("scst.learner.request-timeout", d.RequestTimeout),
            InFlightPerWorker = user.GetInt("scst.learner.in-flight-per-worker", d.InFlightPerWorker),
            AsyncPublishEvery = user.GetInt("scst.learner.async-publish-every", d.AsyncPublishEvery),
            WeightPort = user.GetInt("scst.weights.port", d.WeightPort),
            WeightDType = user.GetString("scst.weights.dtype", d.WeightDType).Trim().ToLowerInvariant(),
            WeightVerifyWholeFile = user.GetBoolean("scst.weights.verify-whole-file", d.WeightVerifyWholeFile),
            WeightFetchAttempts = user.GetInt("scst.weights.max-fetch-attempts", d.WeightFetchAttempts),
            WeightKeepVersions = user.GetInt("scst.weights.keep-versions", d.WeightKeepVersions),
        };
        if (o.Port is < 0 or > 65535) throw new ArgumentException($"--port {o.Port} is outside 0..65535");
        // A TLS setup written only in akka.remote's own HOCON (no scst.tls.certificate) still speaks TLS.
        var tls = o.Tls || user.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl", false);
        foreach (var s in o.SeedNodes) ValidateSeed(s, tls);
        if (roles.Contains("learner")) ValidateWeights(o);
        if (o.WeightDType is not ("auto" or "fp32"))
            throw new ArgumentException($"scst.weights.dtype = '{o.WeightDType}' is not one of: auto (linear layers in the amp dtype, bf16 under amp), fp32 (every tensor as held)");
        if (o.RolloutMemoryBudget < 0) throw new ArgumentException($"scst.rollout.memory-budget {o.RolloutMemoryBudget} must be >= 0 (bytes; 0 = no limit)");
        if (o.WeightFetchAttempts < 1) throw new ArgumentException($"scst.weights.max-fetch-attempts {o.WeightFetchAttempts} must be >= 1");
        return o;
    }

    /// <summary>Every scst.* key a --hocon file may set; anything else under scst would silently do nothing.</summary>
    public static readonly IReadOnlySet<string> Keys = new SortedSet<string>(StringComparer.Ordinal)
    {
        "scst.persistence.backend", "scst.persistence.connection-string", "scst.tls.certificate", "scst.tls.ca", "scst.tls.password-env",
        "scst.rollout.actors", "scst.rollout.devices", "scst.rollout.memory-budget", "scst.reward.pool-size", "scst.learner.request-timeout", "scst.learner.in-flight-per-worker",
        "scst.learner.async-publish-every", "scst.weights.port", "scst.weights.verify-whole-file", "scst.weights.dtype",
        "scst.weights.max-fetch-attempts", "scst.weights.keep-versions",
    };

    /// <summary>The pinned dispatchers (hocon/base.conf) may be tuned as Akka dispatchers.</summary>
    static readonly string[] FreeSections = ["scst.rollout-dispatcher", "scst.learner-dispatcher", "scst.rollout.run-weights"];

    /// <summary>Keys of earlier builds that no longer do anything, each refused with what replaced it.</summary>
    static readonly IReadOnlyDictionary<string, string> Retired = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["scst.weights.chunk-size"] = "weights no longer travel through Akka; the weight server picks its chunk size (4 MiB or more) itself: remove the key",
        ["scst.weights.max-chunks-in-flight"] = "weights are streamed over one HTTP connection per fetch: remove the key",
        ["scst.weights.chunk-timeout"] = "a weight fetch resumes from its last verified chunk when its connection stalls or breaks: remove the key",
    };

    static void RefuseUnknownKeys(string file, Config config)
    {
        if (!config.HasPath("scst") || !config.GetValue("scst").IsObject()) return;
        foreach (var key in Flatten(config.GetValue("scst"), "scst"))
            if (Retired.TryGetValue(key, out var why))
                throw new ConfigurationException($"--hocon file '{file}': '{key}' was retired: {why} (docs/cluster.md)");
            else if (!Keys.Contains(key) && !FreeSections.Any(f => key.StartsWith(f + ".", StringComparison.Ordinal)))
                throw new ConfigurationException($"--hocon file '{file}': '{key}' is not a setting; the scst.* keys are: {string.Join(", ", Keys)} (docs/cluster.md)");
    }

    static IEnumerable<string> Flatten(Akka.Configuration.Hocon.HoconValue v, string prefix) =>
        v.IsObject() ? v.GetObject().Items.SelectMany(kv => Flatten(kv.Value, $"{prefix}.{kv.Key}")) : [prefix];

    /// <summary><c>scst.rollout.devices = all</c> or a list; with a list, <c>scst.rollout.actors</c> would be ignored, so both are refused.</summary>
    static Dictionary<string, double> RunWeightsSetting(Config user)
    {
        var weights = new Dictionary<string, double>(StringComparer.Ordinal);
        if (!user.HasPath("scst.rollout.run-weights")) return weights;
        foreach (var (run, value) in user.GetConfig("scst.rollout.run-weights").AsEnumerable())
        {
            var id = run.Trim('"');
            var w = value.GetDouble();
            if (Scst.Actors.Pipeline.RunIds.Problem(id) is { } bad) throw new ArgumentException($"scst.rollout.run-weights: {bad}");
            if (!(w > 0) || double.IsInfinity(w)) throw new ArgumentException($"scst.rollout.run-weights.{id} = {w}: a run's weight must be a positive number (1 is an equal share)");
            weights[id] = w;
        }
        return weights;
    }

    static IReadOnlyList<string>? DevicesSetting(Config user)
    {
        if (!user.HasPath("scst.rollout.devices")) return null;
        var v = user.GetValue("scst.rollout.devices");
        IReadOnlyList<string> list = v.IsArray() ? [.. v.GetArray().Select(x => x.GetString())] : [v.GetString()];
        var all = list.Count == 1 && list[0].Trim().Equals("all", StringComparison.OrdinalIgnoreCase);
        if (!all && user.HasPath("scst.rollout.actors"))
            throw new ConfigurationException("scst.rollout.devices lists the devices (one rollout actor each), so scst.rollout.actors would do nothing: set one of them");
        return list;
    }

    static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

    static void ValidateWeights(ScstClusterOptions o)
    {
        if (o.WeightPort is < 0 or > 65535) throw new ArgumentException($"scst.weights.port {o.WeightPort} is outside 0..65535");
        // A weight announcement carries up to 2,048 chunk hashes (64 KiB) besides its URL.
        if (o.MaximumFrameSize < 80_000)
            throw new ArgumentException($"akka.remote.dot-netty.tcp.maximum-frame-size {o.MaximumFrameSize} is below 80000 bytes, too small for a weight announcement's chunk hashes");
        if (o.WeightKeepVersions < 1) throw new ArgumentException($"scst.weights.keep-versions {o.WeightKeepVersions} must be >= 1");
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
}
