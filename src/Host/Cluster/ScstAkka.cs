using Akka.Cluster.Hosting;
using Akka.Cluster.Hosting.SBR;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Persistence.Hosting;
using Akka.Remote.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Scst.Actors.Messages;
using Scst.Actors.Persistence;
using Scst.Actors.Serialization;

namespace Scst.Host.Cluster;

/// <summary>
/// The Akka.Hosting side of a node: remoting, clustering, the SQL journal, the protobuf serializer and TLS from one
/// <see cref="ScstClusterOptions"/>. HOCON remains only for what these builders have no option for (dispatchers,
/// log levels, sharding, the split-brain resolver's timing, fast failure) and for the user's --hocon files.
/// </summary>
public static class ScstAkka
{
    public const string SerializerId = "scst";

    public static void Configure(AkkaConfigurationBuilder akka, ScstClusterOptions o)
    {
        // Lowest first: the static files, then the user's files over them; the typed calls below win over both, and
        // they already carry whatever the user's files and the flags said for their keys.
        akka.AddHocon(HoconLoader.LoadStatic(o), HoconAddMode.Prepend);
        akka.AddHocon(o.UserHocon, HoconAddMode.Prepend);
        akka.WithRemoting(Remote(o));
        akka.WithClustering(new ClusterOptions
        {
            Roles = o.Roles.ToArray(),
            SeedNodes = o.SeedNodes.ToArray(),
            // SQLite (one learner node): count only learner-role nodes, so the learner's side always survives; counting
            // every node, a learner with one rollout node is a 1:1 tie. PostgreSQL (learner nodes may take over each
            // other's runs): count every node, so the side that keeps most of the cluster takes the runs of a learner
            // node that died; one learner node against another would be a 1:1 tie, which Akka breaks for the oldest.
            SplitBrainResolver = o.Backend == JournalBackend.Sqlite ? new KeepMajorityOption { Role = "learner" } : new KeepMajorityOption(),
        });
        var (journal, snapshots) = Persistence(o);
        akka.WithJournalAndSnapshot(journal, snapshots);
        // Everything that crosses nodes or lands in the journal is protobuf, never Newtonsoft with type names.
        akka.WithCustomSerializer(SerializerId, [typeof(IScstMessage)], system => new ScstProtobufSerializer(system));
    }

    /// <summary>The Akka config a node with these options runs with (the serializer and TLS are setups, not HOCON).</summary>
    public static Config BuildConfig(ScstClusterOptions o)
    {
        var akka = new AkkaConfigurationBuilder(new ServiceCollection(), NodeOptions.SystemName);
        Configure(akka, o);
        return akka.Configuration.Value;
    }

    static RemoteOptions Remote(ScstClusterOptions o)
    {
        var remote = new RemoteOptions
        {
            HostName = o.Hostname,
            PublicHostName = o.PublicHostname,
            Port = o.Port,
            MaxFrameSize = o.MaximumFrameSize,
        };
        if (TlsSetup.Load(o) is { } tls)
        {
            remote.EnableSsl = true;
            remote.Ssl = tls;
        }
        return remote;
    }

    static (JournalOptions, SnapshotOptions) Persistence(ScstClusterOptions o) => o.Backend switch
    {
        // SQLite has one writer even in WAL mode.
        JournalBackend.Sqlite => (new SqlJournalPluginOptions("SQLite.MS", $"Data Source={o.JournalFile}", parallelism: 1),
            new SqlSnapshotPluginOptions("SQLite.MS", $"Data Source={o.SnapshotFile}")),
        _ => (new SqlJournalPluginOptions("PostgreSQL.15", o.ConnectionString, parallelism: null),
            new SqlSnapshotPluginOptions("PostgreSQL.15", o.ConnectionString)),
    };

    /// <summary>Checks the journal before the actor system touches it (<see cref="JournalPreflight"/>).</summary>
    public static void PreflightJournal(ScstClusterOptions o)
    {
        if (o.Backend == JournalBackend.Sqlite)
        {
            JournalPreflight.PrepareSqlite(o.JournalFile);
            JournalPreflight.PrepareSqlite(o.SnapshotFile);
        }
        else JournalPreflight.CheckPostgres(o.ConnectionString);
    }
}
