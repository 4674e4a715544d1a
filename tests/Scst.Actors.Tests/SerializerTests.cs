using System.Collections.Immutable;
using Akka.Actor;
using Akka.Serialization;
using Google.Protobuf;
using Scst.Actors.Messages;
using Scst.Actors.Pipeline;
using Scst.Actors.Serialization;
using Scst.Actors.Weights;
using Scst.Host.Cluster;

namespace Scst.Actors.Tests;

public class SerializerTests : IDisposable
{
    // Serializers come from Akka.Hosting (WithCustomSerializer), so the system is a node started as the Host starts one.
    readonly ActorSystem _system = TestNodes.Start(TestNodes.NewRunDir());

    public void Dispose() => TestNodes.Stop(_system);

    static readonly RunSpec Spec = new("sync-lr3e-5", "/runs/sync-lr3e-5", "/configs/caption_coco_scst.yaml", "model:\n  arch: blip2_t5\n# ünïcode\n");

    /// <summary>One sample per message type, with non-default values in every field (negative and large where allowed).</summary>
    public static readonly IScstMessage[] Samples =
    [
        new WeightsAvailable(17, new string('a', 64), 5L << 30, 4 << 20, "https://10.0.0.1:43121/weights/v17", [.. Enumerable.Range(0, 1280 * 32).Select(i => (byte)(i * 31))]),
        new SubscribeWeights(),
        new RegisterWorker(RegisterWorker.Rollout, "akka.tcp://scst@10.0.0.7:4055", new([new("protocol", "3"), new("tokenizer", "0123456789abcdef"), new("model.prompt", "a photo of ")])),
        new WorkerRefused("tokenizer differs (learner: 0123, worker: 4567)"),
        new WorkerWelcome(ActorRefs.Nobody, 41),
        new RolloutRequest(77, [3, 1, 4, 1, 5], 12, true, -8_000_000_000L),
        LargeRollout(),
        new ScoreRequest(78, [9, 8], 3, ["a red circle", "", "two squares"], ["a red circle"]),
        new ScoreResult(78, [0.5, -1e-300, 2.25], [0.1, 0.2, -0.3], []),
        new TrainingFinished(1000, Stopped: true),
        StopLearner.Instance,
        new GetLearnerStatus(),
        new LearnerStatus(41, 41, 1000, "async", true, false, 2050, 3, 4, 1, 2, 5, 7, 150, "akka.tcp://scst@10.0.0.1:4053", "sync-lr3e-5"),
        new StartRun(Spec, 17),
        new RunSubmitted(Spec),
        WatchRun.Instance,
        GetRunSpec.Instance,
        new RunAccepted("sync-lr3e-5", 12, 1000, "sync", "akka.tcp://scst@10.0.0.1:4053"),
        new RunRefused("sync-lr3e-5", "run id 'sync-lr3e-5' belongs to the run in /runs/a"),
        new RunEnded("sync-lr3e-5", 1000, 64_000, 3600.5, true, false, "/runs/a/checkpoints/step-1000.safetensors",
            ImmutableDictionary<string, double>.Empty.Add("test/CIDEr", 1.25).Add("val/Bleu_4", 0.375), "", false, "akka.tcp://scst@10.0.0.1:4053"),
        RunEnded.FromError("async-k5", "checkpoint step-10.safetensors is corrupt", userError: true, "akka.tcp://scst@10.0.0.2:4053"),
        new RunAnnounced("async-k5", "async", "akka.tcp://scst@10.0.0.2:4053"),
        new LearnerStepApplied(41, 42, 3, 150, [25, 25], [2, 3], [.. Enumerable.Range(0, 50)], [10], [3], [.. Enumerable.Range(100, 10)], 7),
        new LearnerStepSkipped(new LearnerStepApplied(43, 44, 4, 50, [25], [4], [.. Enumerable.Range(50, 25)], [], [], [], 9), "gradient norm"),
    ];

    /// <summary>
    /// The samples as the first protobuf build wrote them (tests/data/journal-v1): without the message types and fields
    /// added since, which proto3 leaves off the wire when empty, so those bytes still read back and rewrite identically.
    /// </summary>
    public static IScstMessage[] V1Samples => [.. Samples.Where(s => s is not (WorkerRefused or StopLearner or LearnerStepSkipped or StartRun or RunSubmitted
        or WatchRun or GetRunSpec or RunAccepted or RunRefused or RunEnded or RunAnnounced)).Select(s => s switch
    {
        LearnerStatus l => l with { RunId = "" },
        RegisterWorker r => r with { Fingerprint = new([]) },
        TrainingFinished f => f with { Stopped = false },
        RolloutResult r => r with { Device = "" },
        WeightsAvailable w => w with { ChunkSize = 65536, Url = "", ChunkSha256 = [] },
        _ => s,
    })];

    /// <summary>A realistic large rollout: 64 images × K=5 captions × 32 tokens from a 32k vocabulary, 80-character captions.</summary>
    public static RolloutResult LargeRollout()
    {
        const int B = 64, K = 5, L = 32;
        var rng = new Random(1);
        return new RolloutResult(5, [.. Enumerable.Range(0, B).Select(i => i * 1771)], K, L,
            [.. Enumerable.Range(0, B * K * L).Select(_ => (long)rng.Next(0, 32128))],
            [.. Enumerable.Range(0, B * K).Select(i => new string((char)('a' + i % 26), 80))],
            [.. Enumerable.Range(0, B * K).Select(i => -(float)rng.NextDouble() * 40)],
            [.. Enumerable.Range(0, B * K).Select(i => 1 + i % L)], 12, [], "akka.tcp://scst@127.0.0.1:4055", "cuda:3");
    }

    [Fact]
    public void A_realistic_rollout_batch_fits_one_remote_frame()
    {
        var r = LargeRollout();
        var ser = (SerializerWithStringManifest)_system.Serialization.FindSerializerFor(r);
        var bytes = ser.ToBinary(r);
        Assert.True(bytes.Length < 128_000, $"a 64x5x32 rollout is {bytes.Length} bytes");
        var back = (RolloutResult)ser.FromBinary(bytes, ser.Manifest(r));
        Assert.Equal(r.ToBatch().Sequences[17], back.ToBatch().Sequences[17]);
    }

    [Fact]
    public void Every_message_type_round_trips_through_the_bound_serializer()
    {
        var serialization = _system.Serialization;
        // Actor refs travel as paths and resolve against the receiving system: give the sample a real actor of this one.
        var actor = _system.ActorOf(Props.Empty, "publisher");
        foreach (var sample in Samples)
        {
            var m = sample is WorkerWelcome w ? w with { Publisher = actor } : sample;
            var ser = serialization.FindSerializerFor(m);
            Assert.IsType<ScstProtobufSerializer>(ser);
            var bytes = ser.ToBinary(m);
            var manifest = Akka.Serialization.Serialization.ManifestFor(ser, m);
            var back = serialization.Deserialize(bytes, ser.Identifier, manifest);
            Assert.Equal(m.GetType(), back.GetType());
            AssertEquivalent(m, back);
        }
    }

    [Fact]
    public void Every_IScstMessage_type_has_a_codec_and_a_sample()
    {
        var types = typeof(IScstMessage).Assembly.GetTypes()
            .Where(t => typeof(IScstMessage).IsAssignableFrom(t) && !t.IsInterface && !t.IsAbstract).ToHashSet();
        Assert.Empty(types.Except(ScstProtobufSerializer.RegisteredTypes));
        Assert.Empty(types.Except(Samples.Select(s => s.GetType())));
    }

    [Fact]
    public void The_largest_weight_announcement_stays_well_under_the_remote_frame_limit()
    {
        // Any file size: the chunk size grows so that the chunk hashes never exceed MaxChunks.
        foreach (var size in new[] { 0L, 1, 430_000_000, 8L << 30, (8L << 30) + 1, 15_600_000_000, 1L << 40 })
        {
            var chunk = WeightsAvailable.ChunkSizeFor(size);
            var a = new WeightsAvailable(long.MaxValue, new string('0', 64), size, chunk, "https://some-long-host-name.cluster.example.org:65535/weights/v9223372036854775807", new byte[32 * (int)((size + chunk - 1) / chunk)]);
            Assert.InRange(a.ChunkCount, 0, WeightsAvailable.MaxChunks);
            Assert.Null(a.Problem());
            Assert.True(_system.Serialization.FindSerializerFor(a).ToBinary(a).Length < 70_000);
        }
        Assert.Equal(4 << 20, WeightsAvailable.ChunkSizeFor(430_000_000));
        Assert.Equal(8 << 20, WeightsAvailable.ChunkSizeFor(15_600_000_000));
    }

    [Fact]
    public void Unknown_manifest_is_a_clear_error()
    {
        var ser = (SerializerWithStringManifest)_system.Serialization.FindSerializerForType(typeof(IScstMessage));
        var e = Assert.Throws<System.Runtime.Serialization.SerializationException>(() => ser.FromBinary([], "nope"));
        Assert.Contains("nope", e.Message);
    }

    [Fact]
    public void Retired_manifests_are_never_reused_and_refused_by_name()
    {
        var ser = (SerializerWithStringManifest)_system.Serialization.FindSerializerForType(typeof(IScstMessage));
        Assert.Empty(Samples.Select(ser.Manifest).Intersect(ScstProtobufSerializer.RetiredManifests));
        var e = Assert.Throws<System.Runtime.Serialization.SerializationException>(() => ser.FromBinary([], "d.ev.issued"));
        Assert.Contains("'d.ev.issued' belonged to the data shards", e.Message);
    }

    internal static void AssertEquivalent(object expected, object actual)
    {
        foreach (var p in expected.GetType().GetProperties())
        {
            var (a, b) = (p.GetValue(expected), p.GetValue(actual));
            switch (a)
            {
                case ImmutableArray<int> ia: Assert.Equal(ia.ToArray(), ((ImmutableArray<int>)b!).ToArray()); break;
                case ImmutableArray<long> la: Assert.Equal(la.ToArray(), ((ImmutableArray<long>)b!).ToArray()); break;
                case ImmutableArray<float> fa: Assert.Equal(fa.ToArray(), ((ImmutableArray<float>)b!).ToArray()); break;
                case ImmutableArray<double> da: Assert.Equal(da.ToArray(), ((ImmutableArray<double>)b!).ToArray()); break;
                case ImmutableArray<string> sa: Assert.Equal(sa.ToArray(), ((ImmutableArray<string>)b!).ToArray()); break;
                case IScstMessage nested: AssertEquivalent(nested, b!); break;
                default: Assert.Equal(a, b); break;
            }
        }
    }
}
