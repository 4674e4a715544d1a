using Akka.Actor;
using Akka.Serialization;
using Scst.Actors.Messages;
using Scst.Actors.Pipeline;
using Scst.Actors.Serialization;
using Scst.Host.Cluster;

namespace Scst.Actors.Tests.JournalV1;

/// <summary>
/// Bytes and a journal written by the hand-written codec (tests/data/journal-v1) read back with today's generated one:
/// old runs resume, and nodes of either build understand each other.
/// </summary>
public class JournalV1Tests
{
    static readonly TimeSpan Ask = TimeSpan.FromSeconds(30);

    /// <summary>Messages added after journal v1 was written: no committed bytes (their round trip is SerializerTests').</summary>
    [Fact]
    public async Task Every_committed_message_reads_back_to_its_sample_and_rewrites_to_the_same_bytes()
    {
        var system = TestNodes.Start(TestNodes.NewRunDir());
        try
        {
            var ser = (SerializerWithStringManifest)system.Serialization.FindSerializerForType(typeof(IScstMessage));
            var all = Directory.GetFiles(Path.Combine(JournalV1Content.DataDir, "messages"), "*.bin").Order(StringComparer.Ordinal).ToArray();
            // The data-shard and run-manifest messages were removed; their committed bytes stay, refused by name.
            var retired = all.Where(f => ScstProtobufSerializer.RetiredManifests.Contains(Path.GetFileNameWithoutExtension(f)[3..])).ToArray();
            Assert.Equal(ScstProtobufSerializer.RetiredManifests.Count, retired.Select(f => Path.GetFileNameWithoutExtension(f)[3..]).Distinct().Count());
            foreach (var f in retired)
                Assert.Throws<System.Runtime.Serialization.SerializationException>(() => ser.FromBinary(File.ReadAllBytes(f), Path.GetFileNameWithoutExtension(f)[3..]));
            var files = all.Except(retired).ToArray();
            Assert.Equal(SerializerTests.V1Samples.Length, files.Length);
            for (int i = 0; i < files.Length; i++)
            {
                var sample = SerializerTests.V1Samples[i];
                var name = Path.GetFileNameWithoutExtension(files[i]);
                Assert.Equal(ser.Manifest(sample), name[3..]);
                var bytes = File.ReadAllBytes(files[i]);
                var back = ser.FromBinary(bytes, name[3..]);
                Assert.Equal(sample.GetType(), back.GetType());
                if (back is WorkerWelcome w)
                {
                    // The sample's ref (Nobody) resolves against this system to another ref, so only its path is compared.
                    Assert.Equal(((WorkerWelcome)sample).PolicyVersion, w.PolicyVersion);
                    var path = Akka.Serialization.Serialization.SerializedActorPath(((WorkerWelcome)sample).Publisher);
                    Assert.Equal(path, Scst.Actors.Serialization.Proto.WorkerWelcome.Parser.ParseFrom(bytes).Publisher);
                }
                else
                {
                    SerializerTests.AssertEquivalent(sample, back);
                    Assert.True(bytes.AsSpan().SequenceEqual(ser.ToBinary(back)), $"{name}: re-serialized bytes differ from the committed ones");
                }
                Assert.True(bytes.AsSpan().SequenceEqual(ser.ToBinary(sample)), $"{name}: today's bytes for the sample differ from the committed ones");
            }
        }
        finally { TestNodes.Stop(system); }
    }

    [Fact]
    public async Task The_committed_journal_replays_to_the_recorded_state()
    {
        var run = TestNodes.NewRunDir();
        File.Copy(Path.Combine(JournalV1Content.DataDir, "journal.db"), Path.Combine(run, "journal.db"));
        // The journal also holds the removed data shards' and run manifest's events under their own ids; the
        // learner's recovery reads its id only, so they neither break nor change it.
        Assert.Superset(new HashSet<string> { "d.ev.issued", "m.ev.recorded", "s.ev.step" }, JournaledManifests(Path.Combine(run, "journal.db")));
        var sys = TestNodes.Start(run);
        try
        {
            var probe = sys.ActorOf(JournalV1Content.EventProbe.Props(LearnerActor.PersistenceIdValue));
            var replayed = await probe.Ask<object[]>("replayed", Ask);
            Assert.Equal(JournalV1Content.LearnerSteps.Length, replayed.Length);
            for (int i = 0; i < replayed.Length; i++) SerializerTests.AssertEquivalent(JournalV1Content.LearnerSteps[i], replayed[i]);
        }
        finally { TestNodes.Stop(sys); }
    }

    static HashSet<string> JournaledManifests(string journal)
    {
        using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={journal};Mode=ReadOnly;Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT DISTINCT manifest FROM journal";
        using var r = cmd.ExecuteReader();
        var found = new HashSet<string>(StringComparer.Ordinal);
        while (r.Read()) if (!r.IsDBNull(0)) found.Add(r.GetString(0));
        return found;
    }
}
