using System.Diagnostics;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Google.Protobuf;
using Scst.Actors.Weights;
using Xunit.Abstractions;

namespace Scst.Actors.Tests;

/// <summary>Weights move between two ActorSystems over real Akka.Remote on 127.0.0.1.</summary>
public class WeightSyncTests(ITestOutputHelper output)
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    /// <summary>A faulty link: passes requests to the publisher and damages selected replies on the way back.</summary>
    sealed class DamagingRelay : ReceiveActor
    {
        public DamagingRelay(IActorRef publisher, int damageIndex, bool fixUpChunkHash, int times)
        {
            var pending = new Dictionary<(long, int), IActorRef>();
            var damaged = 0;
            Receive<SubscribeWeights>(m => publisher.Forward(m));
            Receive<FetchWeightChunk>(m => { pending[(m.Version, m.Index)] = Sender; publisher.Tell(m); });
            Receive<WeightChunk>(c =>
            {
                if (!pending.Remove((c.Version, c.Index), out var to)) return;
                if (c.Index == damageIndex && damaged < times)
                {
                    damaged++;
                    var bytes = c.Data.ToByteArray();
                    bytes[bytes.Length / 2] ^= 0x5A;
                    var sha = fixUpChunkHash ? Convert.ToHexStringLower(SHA256.HashData(bytes)) : c.Sha256;
                    c = c with { Data = ByteString.CopyFrom(bytes), Sha256 = sha };
                }
                to.Tell(c);
            });
        }
    }

    static (string path, string sha) WriteWeights(string dir, int bytes, int seed)
    {
        var data = new byte[bytes];
        new Random(seed).NextBytes(data);
        var path = Path.Combine(dir, $"weights-{seed}.safetensors");
        File.WriteAllBytes(path, data);
        return (path, Convert.ToHexStringLower(SHA256.HashData(data)));
    }

    async Task RunTransfer(int damageIndex, bool fixUpChunkHash, int times, Action<FetcherStats> check)
    {
        var learner = TestNodes.Start(TestNodes.NewRunDir(), "learner");
        var rolloutDir = TestNodes.NewRunDir();
        var rollout = TestNodes.Start(rolloutDir, "rollout", join: Akka.Cluster.Cluster.Get(learner).SelfAddress);
        try
        {
            learner.ActorOf(WeightPublisher.Props(chunkSize: 65536, keepVersions: 2), "weights");
            var remotePublisher = await rollout.ActorSelection(new RootActorPath(Akka.Cluster.Cluster.Get(learner).SelfAddress) / "user" / "weights").ResolveOne(Wait);
            var link = damageIndex >= 0 ? rollout.ActorOf(Props.Create(() => new DamagingRelay(remotePublisher, damageIndex, fixUpChunkHash, times))) : remotePublisher;

            var kit = new TestKit(rollout);
            var owner = kit.CreateTestProbe();
            var fetcher = rollout.ActorOf(WeightFetcher.Props(link, Path.Combine(rolloutDir, "weights"), owner.Ref,
                new WeightFetcherSettings(8, TimeSpan.FromSeconds(2), 5)));

            var (path, sha) = WriteWeights(TestNodes.NewRunDir(), 6 * 1024 * 1024 + 12345, 7);
            var sw = Stopwatch.StartNew();
            var announced = await learner.ActorSelection("/user/weights").Ask<WeightsAvailable>(new PublishWeights(1, path), Wait);
            Assert.Equal(sha, announced.Sha256);
            var ready = owner.ExpectMsg<WeightsReady>(Wait);
            sw.Stop();
            output.WriteLine($"{announced.SizeBytes / 1e6:F1} MB in {announced.ChunkCount} chunks over Akka.Remote: {sw.Elapsed.TotalMilliseconds:F0} ms ({announced.SizeBytes / 1e6 / sw.Elapsed.TotalSeconds:F1} MB/s)");
            Assert.Equal(1, ready.Version);
            Assert.Equal(sha, ready.Sha256);
            Assert.Equal(sha, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(ready.Path))));
            Assert.False(File.Exists(ready.Path + ".partial"));

            // A second version replaces the first; the fetcher picks it up from the announcement alone.
            var (path2, sha2) = WriteWeights(TestNodes.NewRunDir(), 300_000, 8);
            learner.ActorSelection("/user/weights").Tell(new PublishWeights(2, path2));
            var ready2 = owner.ExpectMsg<WeightsReady>(Wait);
            Assert.Equal((2L, sha2), (ready2.Version, ready2.Sha256));

            check(await fetcher.Ask<FetcherStats>(GetFetcherStats.Instance, Wait));
        }
        finally
        {
            TestNodes.Stop(rollout);
            TestNodes.Stop(learner);
        }
    }

    [Fact]
    public Task Multi_megabyte_file_moves_in_chunks_and_verifies() =>
        RunTransfer(-1, false, 0, s => Assert.Equal((0L, 0L, 2L), (s.ChunksRefused, s.WholeFileRetries, s.VersionsReady)));

    [Fact]
    public Task Damaged_chunk_is_refused_and_fetched_again() =>
        RunTransfer(damageIndex: 17, fixUpChunkHash: false, times: 2, s => Assert.Equal((2L, 0L, 2L), (s.ChunksRefused, s.WholeFileRetries, s.VersionsReady)));

    [Fact]
    public Task Damage_that_passes_the_chunk_hash_is_caught_by_the_whole_file_hash_and_refetched() =>
        RunTransfer(damageIndex: 3, fixUpChunkHash: true, times: 1, s => Assert.Equal((0L, 1L, 2L), (s.ChunksRefused, s.WholeFileRetries, s.VersionsReady)));
}
