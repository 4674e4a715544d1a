using System.Text.RegularExpressions;
using Akka.Configuration;
using Scst.Host.Cluster;
using YamlDotNet.RepresentationModel;

namespace Scst.Host.Tests.Ops;

/// <summary>
/// No Docker engine runs where the tests run, so docker/ is checked by reading it: the compose topology
/// (services, health checks, start order, scalable rollouts, seed address = the learner's advertised one),
/// that every file a Dockerfile or compose mount names exists, that node command lines parse with the real CLI,
/// and that the container HOCON overrides resolve through the real ScstClusterOptions binding and Akka.Hosting config.
/// </summary>
public sealed class ContainerFilesTests
{
    static readonly string Root = FindRepoRoot();
    static readonly string DockerDir = Path.Combine(Root, "docker");
    static readonly string[] NodeServices = ["learner", "rollout", "reward"];

    static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Scst.Actors.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"no Scst.Actors.sln above {AppContext.BaseDirectory}");
    }

    static YamlMappingNode Compose()
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(DockerDir, "docker-compose.yml"));
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    static YamlMappingNode Services() => (YamlMappingNode)Compose()["services"];
    static YamlMappingNode Service(string name) => (YamlMappingNode)Services()[name];

    /// <summary>A key of a mapping, falling back to its YAML merge key (`<<: *node`), as compose reads it.</summary>
    static YamlNode? Get(YamlMappingNode m, string key) =>
        m.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v
        : m.Children.TryGetValue(new YamlScalarNode("<<"), out var merged) && merged is YamlMappingNode b ? Get(b, key) : null;

    /// <summary>Compose's ${VAR:-default} / ${VAR} interpolation with an empty environment.</summary>
    static string Interpolate(string s) =>
        Regex.Replace(s.Replace("$$", "\u0001"), @"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}", m => m.Groups[2].Value)
            .Replace("\u0001", "$");

    static string[] Command(string service) =>
        ((YamlSequenceNode)Get(Service(service), "command")!).Children.Select(n => Interpolate(((YamlScalarNode)n).Value!)).ToArray();

    static string? OptionValue(string[] args, string option)
    {
        var i = Array.IndexOf(args, option);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    static IEnumerable<(string Source, string Target)> BindMounts(string service) =>
        ((YamlSequenceNode)Get(Service(service), "volumes")!).Children
            .Select(n => Interpolate(((YamlScalarNode)n).Value!).Split(':'))
            .Where(p => p[0].StartsWith('.') || p[0].StartsWith('/'))
            .Select(p => (Path.GetFullPath(Path.Combine(DockerDir, p[0])), p[1]));

    /// <summary>Maps a path inside a container to the repository file a bind mount puts there, or null.</summary>
    static string? HostPathOf(string service, string containerPath) =>
        BindMounts(service)
            .Where(m => containerPath == m.Target || containerPath.StartsWith(m.Target.TrimEnd('/') + "/", StringComparison.Ordinal))
            .Select(m => Path.Combine(m.Source, containerPath[m.Target.Length..].TrimStart('/')))
            .FirstOrDefault();

    [Fact]
    public void Compose_has_postgres_learner_rollouts_and_reward_with_health_checks()
    {
        var services = Services().Children.Keys.Select(k => ((YamlScalarNode)k).Value).ToHashSet();
        Assert.Superset(new HashSet<string?>(["postgres", "learner", "rollout", "reward"]), services);

        var pg = Service("postgres");
        Assert.StartsWith("postgres:", ((YamlScalarNode)Get(pg, "image")!).Value);
        var pgTest = string.Join(" ", ((YamlSequenceNode)Get((YamlMappingNode)Get(pg, "healthcheck")!, "test")!).Children.Select(c => ((YamlScalarNode)c).Value));
        Assert.Contains("pg_isready", pgTest);

        foreach (var s in NodeServices)
        {
            var hc = (YamlMappingNode)Get(Service(s), "healthcheck")!;
            var test = ((YamlSequenceNode)Get(hc, "test")!).Children.Select(c => ((YamlScalarNode)c).Value ?? "").ToArray();
            Assert.Equal(new[] { "CMD", "/usr/local/bin/scst-healthcheck" }, test);
            Assert.Equal(s, OptionValue(Command(s), "--role"));
            // The health check probes SCST_PORT; the node must listen on that same port.
            var env = (YamlMappingNode)Get(Service(s), "environment")!;
            Assert.Equal(((YamlScalarNode)Get(env, "SCST_PORT")!).Value, OptionValue(Command(s), "--port"));
        }
    }

    [Fact]
    public void Nodes_start_after_their_dependencies_are_healthy()
    {
        static string Condition(string service, string dependency) =>
            ((YamlScalarNode)Get((YamlMappingNode)Get((YamlMappingNode)Get(Service(service), "depends_on")!, dependency)!, "condition")!).Value!;

        Assert.Equal("service_healthy", Condition("learner", "postgres"));
        foreach (var s in new[] { "rollout", "reward" })
        {
            Assert.Equal("service_healthy", Condition(s, "postgres"));
            Assert.Equal("service_healthy", Condition(s, "learner"));
        }
    }

    [Fact]
    public void Rollout_can_be_scaled()
    {
        var rollout = Service("rollout");
        Assert.Null(Get(rollout, "container_name"));
        Assert.Null(Get(rollout, "hostname"));
        // A published host port ("8080:4053") would make the second replica fail to start.
        if (Get(rollout, "ports") is YamlSequenceNode ports)
            foreach (var p in ports.Children)
                Assert.DoesNotContain(":", ((YamlScalarNode)p).Value);
    }

    [Fact]
    public void Seed_address_is_the_one_the_learner_advertises()
    {
        var learnerHost = ((YamlScalarNode)Get(Service("learner"), "hostname")!).Value;
        var learnerPort = OptionValue(Command("learner"), "--port");
        Assert.Null(OptionValue(Command("learner"), "--seed-nodes"));
        foreach (var s in new[] { "rollout", "reward" })
        {
            // Compose runs the cluster with mutual TLS, so the seed is an akka.ssl.tcp address.
            Assert.Equal($"akka.ssl.tcp://{NodeOptions.SystemName}@{learnerHost}:{learnerPort}", OptionValue(Command(s), "--seed-nodes"));
            Assert.Equal("/certs/node.pfx", OptionValue(Command(s), "--tls-cert"));
        }
    }

    [Fact]
    public void Node_command_lines_parse_with_the_real_cli()
    {
        foreach (var s in NodeServices.Append("config-check"))
        {
            var root = new System.CommandLine.RootCommand();
            GlobalOptions.AddTo(root);
            root.Subcommands.Add(Scst.Host.Commands.TrainCommand.Create());
            root.Subcommands.Add(Scst.Host.Commands.ConfigCommand.Create());
            var parsed = root.Parse(Command(s));
            Assert.True(parsed.Errors.Count == 0, $"{s}: {string.Join("; ", parsed.Errors.Select(e => e.Message))}");
        }
    }

    [Fact]
    public void Every_file_the_nodes_are_given_exists_in_the_repository()
    {
        foreach (var (source, target) in NodeServices.SelectMany(BindMounts))
            Assert.True(Directory.Exists(source) || File.Exists(source), $"bind mount source {source} (for {target}) does not exist");

        foreach (var s in NodeServices.Append("config-check"))
        {
            var args = Command(s);
            var files = args.Select((a, i) => (a, i)).Where(t => t.a is "--hocon" or "--config").Select(t => args[t.i + 1]).ToList();
            if (s == "config-check") files.Add(args[^1]);
            Assert.NotEmpty(files);
            foreach (var f in files)
            {
                var host = HostPathOf(s, f);
                Assert.True(host is not null && File.Exists(host), $"{s}: {f} is not a mounted repository file ({host ?? "no mount"})");
            }
        }
    }

    [Fact]
    public void Dockerfiles_copy_only_files_that_exist_and_are_not_docker_ignored()
    {
        var ignored = File.ReadAllLines(Path.Combine(Root, ".dockerignore"))
            .Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => l.TrimEnd('/')).ToHashSet();
        foreach (var dockerfile in new[] { "Dockerfile", "Dockerfile.cuda" })
        {
            var lines = File.ReadAllLines(Path.Combine(DockerDir, dockerfile));
            var copies = lines.Where(l => l.StartsWith("COPY ") && !l.Contains("--from=")).ToList();
            Assert.NotEmpty(copies);
            foreach (var line in copies)
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..^1];
                foreach (var src in parts.Where(p => !p.Contains('[')))   // name[x] patterns are optional files
                {
                    var path = Path.Combine(Root, src.TrimEnd('/'));
                    Assert.True(File.Exists(path) || Directory.Exists(path), $"{dockerfile}: COPY source '{src}' does not exist");
                    Assert.DoesNotContain(src.TrimEnd('/').Split('/')[0], ignored);
                }
            }
            Assert.Contains(lines, l => l.StartsWith("ENTRYPOINT [\"dotnet\", \"/app/Scst.Host.dll\"]"));
            Assert.Contains(lines, l => l.StartsWith("HEALTHCHECK "));
            Assert.Contains(lines, l => l.StartsWith("USER "));
        }
    }

    [Fact]
    public void Node_entrypoint_and_container_hocon_bind_everywhere_advertise_the_hostname_and_use_postgres()
    {
        var tmp = Path.Combine(Path.GetTempPath(), "scst-ops-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(tmp);
        try
        {
            // A stand-in `dotnet` that records the arguments scst-node execs it with.
            var fakeDotnet = Path.Combine(tmp, "dotnet");
            File.WriteAllText(fakeDotnet, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$ARGS_OUT\"\n");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(fakeDotnet, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var conf = Path.Combine(tmp, "node.conf");
            var argsOut = Path.Combine(tmp, "args.txt");
            var psi = new System.Diagnostics.ProcessStartInfo("sh", [Path.Combine(DockerDir, "scst-node.sh"), "--role", "rollout", "train"])
            { RedirectStandardError = true };
            psi.Environment["PATH"] = tmp + ":" + Environment.GetEnvironmentVariable("PATH");
            psi.Environment["ARGS_OUT"] = argsOut;
            psi.Environment["SCST_NODE_CONF"] = conf;
            psi.Environment["SCST_PUBLIC_HOSTNAME"] = "rollout-7";
            psi.Environment["SCST_PG_CONNECTION_STRING"] = "Host=postgres;Port=5432;Database=scst;Username=scst;Password=p\"w";
            using (var p = System.Diagnostics.Process.Start(psi)!)
            {
                Assert.True(p.WaitForExit(10_000), "scst-node did not finish");
                Assert.True(p.ExitCode == 0, p.StandardError.ReadToEnd());
            }
            Assert.Equal(["/app/Scst.Host.dll", "--hocon", conf, "--role", "rollout", "train"], File.ReadAllLines(argsOut));

            var options = new NodeOptions
            {
                Role = "rollout", Port = 4053, RunDir = Path.Combine(tmp, "run"), SeedNodes = ["akka.tcp://scst@learner:4053"],
                HoconDir = Path.Combine(Root, "hocon"),
                ExtraHoconFiles = [conf, Path.Combine(DockerDir, "hocon", "container.conf"), Path.Combine(DockerDir, "hocon", "postgres-compose.conf")],
            };
            var bound = ScstClusterOptions.From(options);
            var c = ScstAkka.BuildConfig(bound);
            Assert.Equal("0.0.0.0", c.GetString("akka.remote.dot-netty.tcp.hostname"));
            Assert.Equal("rollout-7", c.GetString("akka.remote.dot-netty.tcp.public-hostname"));
            Assert.Equal(4053, c.GetInt("akka.remote.dot-netty.tcp.port"));
            Assert.Equal(JournalBackend.PostgreSql, bound.Backend);
            Assert.Equal("PostgreSQL.15", c.GetString("akka.persistence.journal.sql.provider-name"));
            const string cs = "Host=postgres;Port=5432;Database=scst;Username=scst;Password=p\"w";
            Assert.Equal(cs, c.GetString("akka.persistence.journal.sql.connection-string"));
            Assert.Equal(cs, c.GetString("akka.persistence.snapshot-store.sql.connection-string"));

            // Without the connection string the loader must refuse, not fall back to SQLite.
            var e = Assert.Throws<ConfigurationException>(() => ScstClusterOptions.From(options with { ExtraHoconFiles = options.ExtraHoconFiles.Skip(1).ToArray() }));
            Assert.Contains("connection-string", e.Message);
        }
        finally
        {
            Directory.Delete(tmp, true);
        }
    }
}
