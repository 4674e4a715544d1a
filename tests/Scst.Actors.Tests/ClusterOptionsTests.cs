using Akka.Configuration;
using Akka.Persistence.Sql;
using Scst.Host.Cluster;

namespace Scst.Actors.Tests;

/// <summary>How a node's settings are bound (defaults, --hocon files, flags) and what Akka config the Akka.Hosting calls make of them.</summary>
public class ClusterOptionsTests
{
    static ScstClusterOptions Bind(NodeOptions n) => ScstClusterOptions.From(n);

    static string Write(string dir, string name, string text)
    {
        var f = Path.Combine(dir, name);
        File.WriteAllText(f, text);
        return f;
    }

    [Fact]
    public void Defaults_bind_loopback_use_sqlite_in_run_dir_with_one_writer_and_keep_majority()
    {
        var run = TestNodes.NewRunDir();
        var o = Bind(new NodeOptions { RunDir = run });
        Assert.Equal((0, 2, 1, 2, 1, 0), (o.WeightPort, o.WeightKeepVersions, o.RolloutActors, o.InFlightPerWorker, o.AsyncPublishEvery, o.RewardPoolSize));
        Assert.Equal((5, false, "auto"), (o.WeightFetchAttempts, o.WeightVerifyWholeFile, o.WeightDType));
        Assert.Equal(TimeSpan.FromSeconds(60), o.RequestTimeout);
        var c = ScstAkka.BuildConfig(o);
        Assert.Equal("127.0.0.1", c.GetString("akka.remote.dot-netty.tcp.hostname"));
        Assert.Equal(0, c.GetInt("akka.remote.dot-netty.tcp.port"));
        Assert.Equal(128000, c.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size"));
        Assert.Contains("SplitBrainResolverProvider", c.GetString("akka.cluster.downing-provider-class"));
        Assert.Equal("keep-majority", c.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.Equal(TimeSpan.FromSeconds(20), c.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        Assert.Equal("learner", c.GetString("akka.cluster.split-brain-resolver.keep-majority.role"));
        Assert.Equal("SQLite.MS", c.GetString("akka.persistence.journal.sql.provider-name"));
        Assert.Equal(1, c.GetInt("akka.persistence.journal.sql.parallelism"));
        Assert.Equal($"Data Source={Path.Combine(run, "journal.db")}", c.GetString("akka.persistence.journal.sql.connection-string"));
        Assert.Equal($"Data Source={Path.Combine(run, "snapshots.db")}", c.GetString("akka.persistence.snapshot-store.sql.connection-string"));
        Assert.Equal("akka.persistence.journal.sql", c.GetString("akka.persistence.journal.plugin"));
        Assert.Equal("akka.persistence.snapshot-store.sql", c.GetString("akka.persistence.snapshot-store.plugin"));
        Assert.Equal(["learner", "rollout", "reward"], c.GetStringList("akka.cluster.roles"));
        Assert.Equal("ddata", c.GetString("akka.cluster.sharding.state-store-mode"));
        Assert.Equal("eventsourced", c.GetString("akka.cluster.sharding.remember-entities-store"));
        Assert.True(c.GetBoolean("akka.cluster.sharding.remember-entities"));
        Assert.Equal("PinnedDispatcher", c.GetString("scst.learner-dispatcher.type"));
        // The plugin's own defaults are present underneath (class names etc.).
        Assert.Contains("SqlWriteJournal", c.GetString("akka.persistence.journal.sql.class"));
    }

    [Theory]
    [InlineData("akka.persistence.journal.sql", "provider-name", "connection-string", "parallelism", "auto-initialize")]
    [InlineData("akka.persistence.snapshot-store.sql", "provider-name", "connection-string", "auto-initialize")]
    public void Journal_keeps_every_plugin_default_it_does_not_set_so_old_journals_replay(string plugin, params string[] set)
    {
        // Table and column names, the payload serializer, the tag and query settings: what an existing journal was
        // written with. Only connection, provider, parallelism and auto-initialize come from the node.
        var c = ScstAkka.BuildConfig(Bind(new NodeOptions { RunDir = TestNodes.NewRunDir() })).GetConfig(plugin);
        var defaults = SqlPersistence.DefaultConfiguration.GetConfig(plugin);
        var keys = Flatten(defaults.Root, "").Where(k => !set.Contains(k.Split('.')[0])).ToArray();
        Assert.Contains(keys, k => k.EndsWith("table-name", StringComparison.Ordinal));
        Assert.True(keys.Length > 20, $"only {keys.Length} keys under {plugin}");
        foreach (var k in keys)
            Assert.True(Equals(defaults.GetValue(k)?.ToString(), c.GetValue(k)?.ToString()), $"{plugin}.{k}: default '{defaults.GetValue(k)}', node '{c.GetValue(k)}'");
        Assert.True(c.GetBoolean("auto-initialize"));
    }

    static IEnumerable<string> Flatten(Akka.Configuration.Hocon.HoconValue v, string prefix)
    {
        if (!v.IsObject()) return [prefix];
        return v.GetObject().Items.SelectMany(kv => Flatten(kv.Value, prefix.Length == 0 ? kv.Key : $"{prefix}.{kv.Key}"));
    }

    [Fact]
    public void Command_line_flags_win_over_extra_hocon_which_wins_over_files_and_defaults()
    {
        var run = TestNodes.NewRunDir();
        var extra = Write(run, "extra.conf", "akka.remote.dot-netty.tcp.port = 1111\nakka.loglevel = DEBUG\nakka.cluster.split-brain-resolver.stable-after = 7s\n" +
                                             "scst.weights.port = 32768\nscst.rollout.actors = 3\nscst.learner.request-timeout = 15s\n" +
                                             "akka.cluster.seed-nodes = [\"akka.tcp://scst@127.0.0.1:9999\"]\n");
        var o = Bind(new NodeOptions
        {
            Role = "rollout", Port = 4055, RunDir = run, ExtraHoconFiles = [extra], FastFailure = true,
            SeedNodes = ["akka.tcp://scst@127.0.0.1:4053", "akka.tcp://scst@127.0.0.1:4054"],
        });
        Assert.Equal((4055, 32768, 3), (o.Port, o.WeightPort, o.RolloutActors));
        Assert.Equal(TimeSpan.FromSeconds(15), o.RequestTimeout);
        var c = ScstAkka.BuildConfig(o);
        Assert.Equal(4055, c.GetInt("akka.remote.dot-netty.tcp.port"));
        Assert.Equal("DEBUG", c.GetString("akka.loglevel"));
        Assert.Equal(TimeSpan.FromSeconds(7), c.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        Assert.Equal(["rollout"], c.GetStringList("akka.cluster.roles"));
        Assert.Equal(["akka.tcp://scst@127.0.0.1:4053", "akka.tcp://scst@127.0.0.1:4054"], c.GetStringList("akka.cluster.seed-nodes"));
        Assert.Equal(TimeSpan.FromMilliseconds(250), c.GetTimeSpan("akka.cluster.failure-detector.heartbeat-interval"));
        // Without flags the file's seeds and port hold.
        var fileOnly = Bind(new NodeOptions { Role = "rollout", RunDir = run, ExtraHoconFiles = [extra] });
        Assert.Equal((1111, "akka.tcp://scst@127.0.0.1:9999"), (fileOnly.Port, fileOnly.SeedNodes.Single()));
    }

    [Fact]
    public void Rollout_devices_are_a_list_or_all_and_not_together_with_an_actor_count()
    {
        var run = TestNodes.NewRunDir();
        var list = Bind(new NodeOptions { Role = "rollout", RunDir = run, ExtraHoconFiles = [Write(run, "list.conf", "scst.rollout.devices = [\"cuda:0\", \"cuda:1\"]\n")] });
        Assert.Equal(["cuda:0", "cuda:1"], list.RolloutDevices);
        var all = Bind(new NodeOptions { Role = "rollout", RunDir = run, ExtraHoconFiles = [Write(run, "all.conf", "scst.rollout.devices = all\nscst.rollout.actors = 3\n")] });
        Assert.Equal(["all"], all.RolloutDevices);
        Assert.Equal(3, all.RolloutActors);
        Assert.Null(Bind(new NodeOptions { Role = "rollout", RunDir = run }).RolloutDevices);
        var e = Assert.Throws<Akka.Configuration.ConfigurationException>(() => Bind(new NodeOptions
        {
            Role = "rollout", RunDir = run, ExtraHoconFiles = [Write(run, "both.conf", "scst.rollout.devices = [\"cpu:0\"]\nscst.rollout.actors = 2\n")],
        }));
        Assert.Contains("set one of them", e.Message);
    }

    [Fact]
    public void Extra_hocon_may_use_substitutions()
    {
        // Stacking the user layer over itself once made Akka's HOCON merge recurse until the stack overflowed.
        var run = TestNodes.NewRunDir();
        var extra = Write(run, "subst.conf", "site.host = node-7.example\nakka.remote.dot-netty.tcp.public-hostname = ${site.host}\nsite.maybe = ${?site.unset}\n");
        var o = Bind(new NodeOptions { RunDir = run, ExtraHoconFiles = [extra] });
        Assert.Equal("node-7.example", o.PublicHostname);
        var c = ScstAkka.BuildConfig(o);
        Assert.Equal("node-7.example", c.GetString("akka.remote.dot-netty.tcp.public-hostname"));
        Assert.Equal("127.0.0.1", c.GetString("akka.remote.dot-netty.tcp.hostname"));
    }

    [Fact]
    public void Every_scst_key_a_hocon_file_may_set_is_documented_with_its_default()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Scst.Actors.sln"))) root = root.Parent;
        var doc = File.ReadAllText(Path.Combine(root!.FullName, "docs", "cluster.md"));
        foreach (var key in ScstClusterOptions.Keys)
            Assert.True(doc.Contains($"`{key}`", StringComparison.Ordinal), $"docs/cluster.md does not document {key}");
        var d = new ScstClusterOptions();
        Assert.Contains($"| `scst.weights.port` | | `{d.WeightPort}` (any free port) |", doc);
        Assert.Contains($"| `scst.learner.request-timeout` | | `{d.RequestTimeout.TotalSeconds}s` |", doc);
    }

    [Fact]
    public void Fast_failure_shortens_stable_after_to_seconds()
    {
        var c = ScstAkka.BuildConfig(Bind(new NodeOptions { RunDir = TestNodes.NewRunDir(), FastFailure = true }));
        Assert.True(c.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after") <= TimeSpan.FromSeconds(3));
    }

    [Fact]
    public void Rollout_memory_budget_and_run_weights_bind_and_refuse_nonsense()
    {
        var run = TestNodes.NewRunDir();
        Assert.Equal(0, Bind(new NodeOptions { Role = "rollout", RunDir = run }).RolloutMemoryBudget);
        var ok = Bind(new NodeOptions { Role = "rollout", RunDir = run, ExtraHoconFiles = [Write(run, "budget.conf", "scst.rollout.memory-budget = 8GiB\n")] });
        Assert.Equal(8L << 30, ok.RolloutMemoryBudget);
        var e = Assert.Throws<ArgumentException>(() => Bind(new NodeOptions { Role = "rollout", RunDir = run, ExtraHoconFiles = [Write(run, "neg.conf", "scst.rollout.memory-budget = -1\n")] }));
        Assert.Contains("scst.rollout.memory-budget", e.Message);

        var weights = Bind(new NodeOptions { Role = "rollout", RunDir = run, ExtraHoconFiles = [Write(run, "w.conf", "scst.rollout.run-weights { sync-run = 2, async-run = 0.5 }\n")] });
        Assert.Equal(2.0, weights.RolloutRunWeights["sync-run"]);
        Assert.Equal(0.5, weights.RolloutRunWeights["async-run"]);
        var zero = Assert.Throws<ArgumentException>(() => Bind(new NodeOptions { Role = "rollout", RunDir = run, ExtraHoconFiles = [Write(run, "w0.conf", "scst.rollout.run-weights { a = 0 }\n")] }));
        Assert.Contains("scst.rollout.run-weights.a", zero.Message);
    }

    [Fact]
    public void Postgres_backend_takes_the_connection_string_and_requires_one()
    {
        var run = TestNodes.NewRunDir();
        var ok = Write(run, "pg.conf", "scst.persistence { backend = postgresql, connection-string = \"Host=127.0.0.1;Database=x;Username=u\" }");
        var c = ScstAkka.BuildConfig(Bind(new NodeOptions { RunDir = run, ExtraHoconFiles = [ok] }));
        Assert.Equal("PostgreSQL.15", c.GetString("akka.persistence.journal.sql.provider-name"));
        Assert.Equal("PostgreSQL.15", c.GetString("akka.persistence.snapshot-store.sql.provider-name"));
        Assert.Equal("Host=127.0.0.1;Database=x;Username=u", c.GetString("akka.persistence.journal.sql.connection-string"));
        Assert.Equal("Host=127.0.0.1;Database=x;Username=u", c.GetString("akka.persistence.snapshot-store.sql.connection-string"));
        // Several learner nodes may share this journal: the majority is counted over every node, not learner nodes only.
        Assert.Equal("keep-majority", c.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.True(string.IsNullOrEmpty(c.GetString("akka.cluster.split-brain-resolver.keep-majority.role", "")));

        var missing = Write(run, "pg-missing.conf", "scst.persistence.backend = postgresql");
        var e = Assert.Throws<ConfigurationException>(() => Bind(new NodeOptions { RunDir = run, ExtraHoconFiles = [missing] }));
        Assert.Contains("scst.persistence.connection-string", e.Message);
    }

    [Theory]
    [InlineData("akka.tcp://other@127.0.0.1:4053", "names actor system 'other'")]
    [InlineData("127.0.0.1:4053", "is not an Akka address")]
    public void Bad_seed_nodes_are_named_in_the_error(string seed, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => Bind(new NodeOptions { RunDir = TestNodes.NewRunDir(), SeedNodes = [seed] }));
        Assert.Contains(expected, e.Message);
        Assert.Contains(seed, e.Message);
    }

    [Fact]
    public void Unknown_backend_missing_file_bad_role_and_oversized_chunk_fail_clearly()
    {
        var run = TestNodes.NewRunDir();
        var bad = Write(run, "bad.conf", "scst.persistence.backend = mongodb");
        Assert.Contains("mongodb", Assert.Throws<ConfigurationException>(() => Bind(new NodeOptions { RunDir = run, ExtraHoconFiles = [bad] })).Message);
        Assert.Contains("nope.conf", Assert.Throws<FileNotFoundException>(() => Bind(new NodeOptions { RunDir = run, ExtraHoconFiles = [Path.Combine(run, "nope.conf")] })).Message);
        Assert.Contains("--role 'boss'", Assert.Throws<ArgumentException>(() => Bind(new NodeOptions { RunDir = run, Role = "boss" })).Message);
        var broken = Write(run, "broken.conf", "akka.loglevel = ${does-not-exist}");
        Assert.Contains("broken.conf", Assert.Throws<ConfigurationException>(() => Bind(new NodeOptions { RunDir = run, ExtraHoconFiles = [broken] })).Message);
        var tuned = Write(run, "tuned.conf", "scst.rollout-dispatcher.throughput = 5");
        Assert.Equal(5, ScstAkka.BuildConfig(Bind(new NodeOptions { RunDir = run, ExtraHoconFiles = [tuned] })).GetInt("scst.rollout-dispatcher.throughput"));
        var typo = Write(run, "typo.conf", "scst.weights.keep_versions = 3");
        var e = Assert.Throws<ConfigurationException>(() => Bind(new NodeOptions { RunDir = run, ExtraHoconFiles = [typo] }));
        Assert.Contains("typo.conf", e.Message);
        Assert.Contains("'scst.weights.keep_versions' is not a setting", e.Message);
        var dtype = Write(run, "dtype.conf", "scst.weights.dtype = fp16");
        Assert.Contains("scst.weights.dtype = 'fp16'", Assert.Throws<ArgumentException>(() => Bind(new NodeOptions { RunDir = run, ExtraHoconFiles = [dtype] })).Message);
        var port = Write(run, "port.conf", "scst.weights.port = 70000");
        Assert.Contains("scst.weights.port 70000", Assert.Throws<ArgumentException>(() => Bind(new NodeOptions { RunDir = run, ExtraHoconFiles = [port] })).Message);
    }

    [Theory]
    [InlineData("scst.weights.chunk-size = 65536")]
    [InlineData("scst.weights.max-chunks-in-flight = 8")]
    [InlineData("scst.weights.chunk-timeout = 5s")]
    public void Retired_weight_chunk_keys_are_refused_in_one_line_naming_the_key(string line)
    {
        var run = TestNodes.NewRunDir();
        var old = Write(run, "old.conf", line);
        var e = Assert.Throws<ConfigurationException>(() => Bind(new NodeOptions { RunDir = run, ExtraHoconFiles = [old] }));
        var key = line[..line.IndexOf(' ')];
        Assert.Contains($"old.conf': '{key}' was retired", e.Message);
        Assert.Contains("remove the key", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
