using Akka.Actor;
using Scst.Actors.Data;
using Scst.Actors.Persistence;

namespace Scst.Actors.Tests;

/// <summary>Data shards on real cluster sharding with the SQLite journal in a temp run folder.</summary>
public class DataShardTests
{
    static readonly TimeSpan Ask = TimeSpan.FromSeconds(20);
    const int N = 103, S = 4;
    static DataShardSettings Settings(int s = S, TimeSpan? lease = null) => new(s, N, Seed: 1234, lease ?? TimeSpan.FromMinutes(5));

    /// <summary>Pulls batches round-robin over the shards, acking each unless <paramref name="ackWhen"/> says not to.</summary>
    static async Task<List<Batch>> Drain(IActorRef region, int shards, int maxBatches, Func<Batch, bool>? ackWhen = null, long epoch = 0)
    {
        var got = new List<Batch>();
        var exhausted = new HashSet<int>();
        for (int k = 0; got.Count < maxBatches && exhausted.Count < shards; k++)
        {
            var shard = k % shards;
            if (exhausted.Contains(shard)) continue;
            // Stop at the epoch boundary: a shard starts its next epoch as soon as the last batch is acked.
            if ((await region.Ask<ShardStatus>(new GetShardStatus(shard), Ask)).Epoch > epoch) { exhausted.Add(shard); continue; }
            var reply = await region.Ask<object>(new RequestBatch(shard, 10), Ask);
            switch (reply)
            {
                case Batch b when b.Epoch == epoch:
                    got.Add(b);
                    if (ackWhen?.Invoke(b) ?? true)
                        Assert.False((await region.Ask<BatchAcked>(new AckBatch(shard, b.Seq), Ask)).Duplicate);
                    break;
                case Batch: exhausted.Add(shard); break; // next epoch started: this shard is done with ours
                case NoBatchAvailable: exhausted.Add(shard); break;
                default: throw new Xunit.Sdk.XunitException($"unexpected reply {reply}");
            }
        }
        return got;
    }

    [Fact]
    public async Task One_epoch_serves_every_image_exactly_once_then_reshuffles()
    {
        var run = TestNodes.NewRunDir();
        var sys = TestNodes.Start(run);
        try
        {
            var region = DataShards.StartRegion(sys, Settings());
            var batches = await Drain(region, S, int.MaxValue);
            var ids = batches.SelectMany(b => b.ImageIds).ToList();
            Assert.Equal(Enumerable.Range(0, N), ids.Order());
            Assert.All(batches, b => Assert.All(b.ImageIds, id => Assert.Equal(b.Shard, id % S)));

            var status = await region.Ask<ShardStatus>(new GetShardStatus(0), Ask);
            Assert.Equal(1, status.Epoch);
            Assert.Equal(0, status.Cursor);
            var epoch1 = ShardOrder.Shuffled(0, S, N, 1234, 1);
            Assert.NotEqual(ShardOrder.Shuffled(0, S, N, 1234, 0), epoch1);
            var first = await region.Ask<Batch>(new RequestBatch(0, 5), Ask);
            Assert.Equal(epoch1.Take(5).ToArray(), first.ImageIds.ToArray());
        }
        finally { TestNodes.Stop(sys); }
    }

    [Fact]
    public async Task Restart_resumes_cursor_from_journal_and_reissues_unacked_batches()
    {
        var run = TestNodes.NewRunDir();
        var consumed = new List<int>();
        List<Batch> unacked;
        var sys = TestNodes.Start(run);
        try
        {
            var region = DataShards.StartRegion(sys, Settings());
            // Ack every other batch; the rest are "in flight" when the process goes away.
            var first = await Drain(region, S, 6, b => b.Seq % 2 == 0);
            consumed.AddRange(first.Where(b => b.Seq % 2 == 0).SelectMany(b => b.ImageIds));
            unacked = first.Where(b => b.Seq % 2 != 0).ToList();
            Assert.NotEmpty(unacked);
        }
        finally { TestNodes.Stop(sys); }

        var sys2 = TestNodes.Start(run);
        try
        {
            var region = DataShards.StartRegion(sys2, Settings());
            foreach (var shard in Enumerable.Range(0, S))
            {
                var st = await region.Ask<ShardStatus>(new GetShardStatus(shard), Ask);
                Assert.Equal(0, st.Epoch);
                Assert.Equal(unacked.Count(b => b.Shard == shard), st.Outstanding);
            }
            // The first request to a shard with unacked batches gets one of them back, same seq and ids.
            var shardWithLoss = unacked[0].Shard;
            var again = await region.Ask<Batch>(new RequestBatch(shardWithLoss, 10), Ask);
            var original = unacked.Single(b => b.Shard == shardWithLoss && b.Seq == again.Seq);
            Assert.Equal(original.ImageIds.ToArray(), again.ImageIds.ToArray());
            await region.Ask<BatchAcked>(new AckBatch(shardWithLoss, again.Seq), Ask);
            consumed.AddRange(again.ImageIds);

            consumed.AddRange((await Drain(region, S, int.MaxValue)).SelectMany(b => b.ImageIds));
            Assert.Equal(Enumerable.Range(0, N), consumed.Order());
        }
        finally { TestNodes.Stop(sys2); }
    }

    [Fact]
    public async Task Batch_of_a_dead_requester_goes_to_the_next_requester_and_a_late_ack_is_a_duplicate()
    {
        var run = TestNodes.NewRunDir();
        var sys = TestNodes.Start(run);
        try
        {
            var region = DataShards.StartRegion(sys, Settings());
            var doomed = new Akka.TestKit.Xunit2.TestKit(sys);
            var probe = doomed.CreateTestProbe();
            region.Tell(new RequestBatch(1, 10), probe.Ref);
            var lost = probe.ExpectMsg<Batch>(Ask);
            sys.Stop(probe.Ref);
            await Task.Delay(500);
            var reissued = await region.Ask<Batch>(new RequestBatch(1, 10), Ask);
            Assert.Equal(lost.Seq, reissued.Seq);
            Assert.Equal(lost.ImageIds.ToArray(), reissued.ImageIds.ToArray());
            Assert.False((await region.Ask<BatchAcked>(new AckBatch(1, reissued.Seq), Ask)).Duplicate);
            Assert.True((await region.Ask<BatchAcked>(new AckBatch(1, reissued.Seq), Ask)).Duplicate);
        }
        finally { TestNodes.Stop(sys); }
    }

    [Fact]
    public async Task Expired_lease_is_handed_out_again()
    {
        var sys = TestNodes.Start(TestNodes.NewRunDir());
        try
        {
            var region = DataShards.StartRegion(sys, Settings(lease: TimeSpan.FromMilliseconds(300)));
            var a = await region.Ask<Batch>(new RequestBatch(2, 10), Ask);
            var b = await region.Ask<Batch>(new RequestBatch(2, 10), Ask);
            Assert.NotEqual(a.Seq, b.Seq); // a's lease is still running
            await Task.Delay(600);
            var c = await region.Ask<Batch>(new RequestBatch(2, 10), Ask);
            Assert.Equal(a.Seq, c.Seq);
        }
        finally { TestNodes.Stop(sys); }
    }

    [Fact]
    public async Task A_different_shard_count_for_an_existing_journal_is_refused()
    {
        var run = TestNodes.NewRunDir();
        var sys = TestNodes.Start(run);
        try
        {
            await RunManifest.VerifyAsync(sys, new Dictionary<string, string> { ["data.shard-count"] = "4" }, "test journal", Ask);
            var region = DataShards.StartRegion(sys, Settings());
            await region.Ask<Batch>(new RequestBatch(0, 3), Ask);
        }
        finally { TestNodes.Stop(sys); }

        var sys2 = TestNodes.Start(run);
        try
        {
            var e = await Assert.ThrowsAsync<RunConfigMismatchException>(() =>
                RunManifest.VerifyAsync(sys2, new Dictionary<string, string> { ["data.shard-count"] = "3" }, "test journal", Ask));
            Assert.Contains("data.shard-count = 4", e.Message);
            Assert.Contains("data.shard-count = 3", e.Message);
            // Even without the manifest check the shard itself refuses to serve under another layout.
            var region = DataShards.StartRegion(sys2, Settings(s: 3));
            var err = await region.Ask<ShardError>(new RequestBatch(0, 3), Ask);
            Assert.Contains("shard-count=4", err.Message);
            Assert.Contains("shard-count=3", err.Message);
        }
        finally { TestNodes.Stop(sys2); }
    }
}
