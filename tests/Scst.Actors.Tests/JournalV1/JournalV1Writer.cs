using Akka.Actor;
using Akka.Serialization;
using Scst.Actors.Data;
using Scst.Actors.Persistence;
using Scst.Actors.Pipeline;
using Scst.Actors.Serialization;

namespace Scst.Actors.Tests.JournalV1;

/// <summary>
/// Regenerates tests/data/journal-v1 when SCST_WRITE_JOURNAL_V1=1. The committed files were written by the
/// hand-written codec (before the .proto codegen); they must never be regenerated, only added to as v2.
/// </summary>
public class JournalV1Writer
{
    [SkippableFact]
    public async Task Write_journal_v1()
    {
        Skip.IfNot(Environment.GetEnvironmentVariable("SCST_WRITE_JOURNAL_V1") == "1", "writes test data; set SCST_WRITE_JOURNAL_V1=1");
        var dir = JournalV1Content.DataDir;
        Directory.CreateDirectory(Path.Combine(dir, "messages"));

        var run = TestNodes.NewRunDir();
        var sys = TestNodes.Start(run);
        var ask = TimeSpan.FromSeconds(30);
        var statuses = new List<string>();
        try
        {
            var ser = (SerializerWithStringManifest)sys.Serialization.FindSerializerForType(typeof(Messages.IScstMessage));
            var samples = SerializerTests.Samples.Select((m, i) => (m, i)).ToArray();
            foreach (var (m, i) in samples)
                File.WriteAllBytes(Path.Combine(dir, "messages", $"{i:D2}-{ser.Manifest(m)}.bin"), ser.ToBinary(m));

            await RunManifest.VerifyAsync(sys, JournalV1Content.Manifest, "journal-v1", ask);
            var region = DataShards.StartRegion(sys, JournalV1Content.Shards);
            foreach (var (shard, requests, acks) in JournalV1Content.ShardTraffic)
            {
                var batches = new List<Batch>();
                for (int i = 0; i < requests; i++) batches.Add(await region.Ask<Batch>(new RequestBatch(shard, 5), ask));
                foreach (var b in batches.Take(acks)) await region.Ask<BatchAcked>(new AckBatch(shard, b.Seq), ask);
                var s = await region.Ask<ShardStatus>(new GetShardStatus(shard), ask);
                statuses.Add(string.Join(' ', s.Shard, s.Epoch, s.Size, s.Cursor, s.Outstanding, s.ConsumedThisEpoch, s.EpochsCompleted));
            }
            var probe = sys.ActorOf(JournalV1Content.EventProbe.Props(LearnerActor.PersistenceIdValue, JournalV1Content.LearnerSteps));
            Assert.Equal("done", await probe.Ask<string>("persist", ask));
        }
        finally { TestNodes.Stop(sys); }

        var f = Path.Combine(run, "journal.db");
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={f};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE; VACUUM;";
            cmd.ExecuteNonQuery();
        }
        File.Copy(f, Path.Combine(dir, "journal.db"), overwrite: true);
        File.WriteAllLines(Path.Combine(dir, "shard-status.txt"), statuses);
    }
}
