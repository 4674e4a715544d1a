using Akka.Actor;
using Akka.Serialization;
using Scst.Actors.Data;
using Scst.Actors.Messages;
using Scst.Actors.Persistence;
using Scst.Actors.Pipeline;
using Scst.Host.Cluster;

namespace Scst.Actors.Tests.JournalV1;

/// <summary>
/// Bytes and a journal written by the hand-written codec (tests/data/journal-v1) read back with today's generated one:
/// old runs resume, and nodes of either build understand each other.
/// </summary>
public class JournalV1Tests
{
    static readonly TimeSpan Ask = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Every_committed_message_reads_back_to_its_sample_and_rewrites_to_the_same_bytes()
    {
        var system = TestNodes.Start(TestNodes.NewRunDir());
        try
        {
            var ser = (SerializerWithStringManifest)system.Serialization.FindSerializerForType(typeof(IScstMessage));
            var files = Directory.GetFiles(Path.Combine(JournalV1Content.DataDir, "messages"), "*.bin").Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(SerializerTests.Samples.Length, files.Length);
            for (int i = 0; i < files.Length; i++)
            {
                var sample = SerializerTests.Samples[i];
                var name = Path.GetFileNameWithoutExtension(files[i]);
                Assert.Equal($"{i:D2}-{ser.Manifest(sample)}", name);
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
        var sys = TestNodes.Start(run);
        try
        {
            var journaled = await RunManifest.VerifyAsync(sys, JournalV1Content.Manifest, "journal-v1", Ask);
            Assert.Equal(JournalV1Content.Manifest.ToArray(), journaled.ToArray());
            var changed = JournalV1Content.Manifest.SetItem("data.seed", "2");
            var e = await Assert.ThrowsAsync<RunConfigMismatchException>(() => RunManifest.VerifyAsync(sys, changed, "journal-v1", Ask));
            Assert.Contains("data.seed = 1", e.Message);

            var region = DataShards.StartRegion(sys, JournalV1Content.Shards);
            var recorded = File.ReadAllLines(Path.Combine(JournalV1Content.DataDir, "shard-status.txt"));
            foreach (var line in recorded)
            {
                var f = line.Split(' ').Select(long.Parse).ToArray();
                var s = await region.Ask<ShardStatus>(new GetShardStatus((int)f[0]), Ask);
                Assert.Equal(line, string.Join(' ', s.Shard, s.Epoch, s.Size, s.Cursor, s.Outstanding, s.ConsumedThisEpoch, s.EpochsCompleted));
            }

            var probe = sys.ActorOf(JournalV1Content.EventProbe.Props(LearnerActor.PersistenceIdValue));
            var replayed = await probe.Ask<object[]>("replayed", Ask);
            Assert.Equal(JournalV1Content.LearnerSteps.Length, replayed.Length);
            for (int i = 0; i < replayed.Length; i++) SerializerTests.AssertEquivalent(JournalV1Content.LearnerSteps[i], replayed[i]);
        }
        finally { TestNodes.Stop(sys); }
    }
}
