using Akka.Configuration;
using Scst.Host.Cluster;

namespace Scst.Actors.Tests;

public class HoconLoaderTests
{
    [Fact]
    public void Defaults_bind_loopback_use_sqlite_in_run_dir_with_one_writer_and_keep_majority()
    {
        var run = TestNodes.NewRunDir();
        var c = HoconLoader.Load(new NodeOptions { RunDir = run });
        Assert.Equal("127.0.0.1", c.GetString("akka.remote.dot-netty.tcp.hostname"));
        Assert.Equal("cluster", c.GetString("akka.actor.provider"));
        Assert.Equal("keep-majority", c.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.Equal(TimeSpan.FromSeconds(20), c.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        Assert.Equal("learner", c.GetString("akka.cluster.split-brain-resolver.keep-majority.role"));
        Assert.Equal("SQLite.MS", c.GetString("akka.persistence.journal.sql.provider-name"));
        Assert.Equal(1, c.GetInt("akka.persistence.journal.sql.parallelism"));
        Assert.Equal($"Data Source={Path.Combine(run, "journal.db")}", c.GetString("akka.persistence.journal.sql.connection-string"));
        Assert.Equal($"Data Source={Path.Combine(run, "snapshots.db")}", c.GetString("akka.persistence.snapshot-store.sql.connection-string"));
        Assert.Equal("akka.persistence.journal.sql", c.GetString("akka.persistence.journal.plugin"));
        Assert.Equal(["learner", "rollout", "reward"], c.GetStringList("akka.cluster.roles"));
        Assert.Equal("ddata", c.GetString("akka.cluster.sharding.state-store-mode"));
        Assert.Equal("eventsourced", c.GetString("akka.cluster.sharding.remember-entities-store"));
        Assert.True(c.GetBoolean("akka.cluster.sharding.remember-entities"));
        // The plugin's own defaults are present underneath (class names etc.).
        Assert.Contains("SqlWriteJournal", c.GetString("akka.persistence.journal.sql.class"));
        Assert.Equal("scst", c.GetString("akka.actor.serialization-bindings.\"Scst.Actors.Messages.IScstMessage, Scst.Actors\""));
    }

    [Fact]
    public void Command_line_overrides_win_over_extra_hocon_which_wins_over_files()
    {
        var run = TestNodes.NewRunDir();
        var extra = Path.Combine(run, "extra.conf");
        File.WriteAllText(extra, "akka.remote.dot-netty.tcp.port = 1111\nakka.loglevel = DEBUG\nakka.cluster.split-brain-resolver.stable-after = 7s");
        var c = HoconLoader.Load(new NodeOptions
        {
            Role = "rollout", Port = 4055, RunDir = run, ExtraHoconFiles = [extra], FastFailure = true,
            SeedNodes = ["akka.tcp://scst@127.0.0.1:4053", "akka.tcp://scst@127.0.0.1:4054"],
        });
        Assert.Equal(4055, c.GetInt("akka.remote.dot-netty.tcp.port"));
        Assert.Equal("DEBUG", c.GetString("akka.loglevel"));
        Assert.Equal(TimeSpan.FromSeconds(7), c.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        Assert.Equal(["rollout"], c.GetStringList("akka.cluster.roles"));
        Assert.Equal(["akka.tcp://scst@127.0.0.1:4053", "akka.tcp://scst@127.0.0.1:4054"], c.GetStringList("akka.cluster.seed-nodes"));
        Assert.Equal(TimeSpan.FromMilliseconds(250), c.GetTimeSpan("akka.cluster.failure-detector.heartbeat-interval"));
    }

    [Fact]
    public void Extra_hocon_may_use_substitutions()
    {
        // Stacking the user layer over itself once made Akka's HOCON merge recurse until the stack overflowed.
        var run = TestNodes.NewRunDir();
        var extra = Path.Combine(run, "subst.conf");
        File.WriteAllText(extra, "scst.test.host = node-7.example\nakka.remote.dot-netty.tcp.public-hostname = ${scst.test.host}\nscst.test.maybe = ${?scst.test.unset}\n");
        var c = HoconLoader.Load(new NodeOptions { RunDir = run, ExtraHoconFiles = [extra] });
        Assert.Equal("node-7.example", c.GetString("akka.remote.dot-netty.tcp.public-hostname"));
        Assert.Equal("127.0.0.1", c.GetString("akka.remote.dot-netty.tcp.hostname"));
    }

    [Fact]
    public void Fast_failure_shortens_stable_after_to_seconds()
    {
        var c = HoconLoader.Load(new NodeOptions { RunDir = TestNodes.NewRunDir(), FastFailure = true });
        Assert.True(c.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after") <= TimeSpan.FromSeconds(3));
    }

    [Fact]
    public void Postgres_backend_takes_the_connection_string_and_requires_one()
    {
        var run = TestNodes.NewRunDir();
        var ok = Path.Combine(run, "pg.conf");
        File.WriteAllText(ok, "scst.persistence { backend = postgresql, connection-string = \"Host=127.0.0.1;Database=x;Username=u\" }");
        var c = HoconLoader.Load(new NodeOptions { RunDir = run, ExtraHoconFiles = [ok] });
        Assert.Equal("PostgreSQL.15", c.GetString("akka.persistence.journal.sql.provider-name"));
        Assert.Equal("Host=127.0.0.1;Database=x;Username=u", c.GetString("akka.persistence.snapshot-store.sql.connection-string"));

        var missing = Path.Combine(run, "pg-missing.conf");
        File.WriteAllText(missing, "scst.persistence.backend = postgresql");
        var e = Assert.Throws<ConfigurationException>(() => HoconLoader.Load(new NodeOptions { RunDir = run, ExtraHoconFiles = [missing] }));
        Assert.Contains("scst.persistence.connection-string", e.Message);
    }

    [Theory]
    [InlineData("akka.tcp://other@127.0.0.1:4053", "names actor system 'other'")]
    [InlineData("127.0.0.1:4053", "is not an Akka address")]
    public void Bad_seed_nodes_are_named_in_the_error(string seed, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => HoconLoader.Load(new NodeOptions { RunDir = TestNodes.NewRunDir(), SeedNodes = [seed] }));
        Assert.Contains(expected, e.Message);
        Assert.Contains(seed, e.Message);
    }

    [Fact]
    public void Unknown_backend_missing_file_and_bad_role_fail_clearly()
    {
        var run = TestNodes.NewRunDir();
        var bad = Path.Combine(run, "bad.conf");
        File.WriteAllText(bad, "scst.persistence.backend = mongodb");
        Assert.Contains("mongodb", Assert.Throws<ConfigurationException>(() => HoconLoader.Load(new NodeOptions { RunDir = run, ExtraHoconFiles = [bad] })).Message);
        Assert.Contains("nope.conf", Assert.Throws<FileNotFoundException>(() => HoconLoader.Load(new NodeOptions { RunDir = run, ExtraHoconFiles = [Path.Combine(run, "nope.conf")] })).Message);
        Assert.Contains("--role 'boss'", Assert.Throws<ArgumentException>(() => HoconLoader.Load(new NodeOptions { RunDir = run, Role = "boss" })).Message);
        var broken = Path.Combine(run, "broken.conf");
        File.WriteAllText(broken, "akka.loglevel = ${does-not-exist}");
        Assert.Contains("broken.conf", Assert.Throws<ConfigurationException>(() => HoconLoader.Load(new NodeOptions { RunDir = run, ExtraHoconFiles = [broken] })).Message);
    }
}
