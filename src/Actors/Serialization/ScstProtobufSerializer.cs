using System.Collections.Immutable;
using Akka.Actor;
using Akka.Serialization;
using Scst.Actors.Data;
using Scst.Actors.Persistence;
using Scst.Actors.Pipeline;
using Scst.Actors.Weights;

namespace Scst.Actors.Serialization;

/// <summary>
/// Protobuf serializer for every <see cref="Messages.IScstMessage"/>. Manifests and field numbers are part of the
/// journal format: never renumber or reuse them, only add.
/// </summary>
public sealed class ScstProtobufSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 6106;
    public override int Identifier => Id;

    sealed record Codec(string Manifest, Type Type, Func<object, byte[]> Write, Func<byte[], ExtendedActorSystem, object> Read);

    static readonly Codec[] Codecs =
    [
        // Data shards: commands and replies
        C<RequestBatch>("d.req", m => new ProtoWriter().Int32(1, m.Shard).Int32(2, m.MaxImages),
            r => { int s = 0, n = 0; Fields(r, f => { if (f == 1) s = r.Int32(); else if (f == 2) n = r.Int32(); else r.Skip(); }); return new RequestBatch(s, n); }),
        C<Batch>("d.batch", m => new ProtoWriter().Int32(1, m.Shard).Int64(2, m.Epoch).Int64(3, m.Seq).PackedInt32(4, m.ImageIds),
            r => { int s = 0; long e = 0, q = 0; var ids = new List<int>(); Fields(r, f => { switch (f) { case 1: s = r.Int32(); break; case 2: e = r.Int64(); break; case 3: q = r.Int64(); break; case 4: r.Int32s(ids); break; default: r.Skip(); break; } }); return new Batch(s, e, q, [.. ids]); }),
        C<NoBatchAvailable>("d.none", m => new ProtoWriter().Int32(1, m.Shard).Int64(2, m.Epoch).Int32(3, m.Outstanding),
            r => { int s = 0, o = 0; long e = 0; Fields(r, f => { switch (f) { case 1: s = r.Int32(); break; case 2: e = r.Int64(); break; case 3: o = r.Int32(); break; default: r.Skip(); break; } }); return new NoBatchAvailable(s, e, o); }),
        C<AckBatch>("d.ack", m => new ProtoWriter().Int32(1, m.Shard).Int64(2, m.Seq),
            r => { int s = 0; long q = 0; Fields(r, f => { if (f == 1) s = r.Int32(); else if (f == 2) q = r.Int64(); else r.Skip(); }); return new AckBatch(s, q); }),
        C<BatchAcked>("d.acked", m => new ProtoWriter().Int32(1, m.Shard).Int64(2, m.Seq).Bool(3, m.Duplicate),
            r => { int s = 0; long q = 0; bool d = false; Fields(r, f => { switch (f) { case 1: s = r.Int32(); break; case 2: q = r.Int64(); break; case 3: d = r.Bool(); break; default: r.Skip(); break; } }); return new BatchAcked(s, q, d); }),
        C<GetShardStatus>("d.getstatus", m => new ProtoWriter().Int32(1, m.Shard),
            r => { int s = 0; Fields(r, f => { if (f == 1) s = r.Int32(); else r.Skip(); }); return new GetShardStatus(s); }),
        C<ShardStatus>("d.status", m => new ProtoWriter().Int32(1, m.Shard).Int64(2, m.Epoch).Int32(3, m.Size).Int32(4, m.Cursor).Int32(5, m.Outstanding).Int32(6, m.ConsumedThisEpoch).Int64(7, m.EpochsCompleted),
            r => { int s = 0, size = 0, c = 0, o = 0, n = 0; long e = 0, done = 0; Fields(r, f => { switch (f) { case 1: s = r.Int32(); break; case 2: e = r.Int64(); break; case 3: size = r.Int32(); break; case 4: c = r.Int32(); break; case 5: o = r.Int32(); break; case 6: n = r.Int32(); break; case 7: done = r.Int64(); break; default: r.Skip(); break; } }); return new ShardStatus(s, e, size, c, o, n, done); }),
        C<ShardError>("d.error", m => new ProtoWriter().Int32(1, m.Shard).String(2, m.Message),
            r => { int s = 0; string t = ""; Fields(r, f => { if (f == 1) s = r.Int32(); else if (f == 2) t = r.String(); else r.Skip(); }); return new ShardError(s, t); }),
        // Data shards: journal events
        C<ShardInitialized>("d.ev.init", m => new ProtoWriter().Int32(1, m.ShardCount).Int32(2, m.DatasetSize).Int64(3, m.Seed),
            r => { int sc = 0, n = 0; long seed = 0; Fields(r, f => { switch (f) { case 1: sc = r.Int32(); break; case 2: n = r.Int32(); break; case 3: seed = r.Int64(); break; default: r.Skip(); break; } }); return new ShardInitialized(sc, n, seed); }),
        C<BatchIssued>("d.ev.issued", m => new ProtoWriter().Int64(1, m.Seq).Int64(2, m.Epoch).Int32(3, m.Offset).Int32(4, m.Count),
            r => { long q = 0, e = 0; int o = 0, c = 0; Fields(r, f => { switch (f) { case 1: q = r.Int64(); break; case 2: e = r.Int64(); break; case 3: o = r.Int32(); break; case 4: c = r.Int32(); break; default: r.Skip(); break; } }); return new BatchIssued(q, e, o, c); }),
        C<BatchConsumed>("d.ev.consumed", m => new ProtoWriter().Int64(1, m.Seq),
            r => { long q = 0; Fields(r, f => { if (f == 1) q = r.Int64(); else r.Skip(); }); return new BatchConsumed(q); }),
        C<EpochStarted>("d.ev.epoch", m => new ProtoWriter().Int64(1, m.Epoch),
            r => { long e = 0; Fields(r, f => { if (f == 1) e = r.Int64(); else r.Skip(); }); return new EpochStarted(e); }),
        // Run manifest
        C<VerifyRunManifest>("m.verify", m => new ProtoWriter().Map(1, m.Expected), r => new VerifyRunManifest(ReadMap(r))),
        C<RunManifestOk>("m.ok", m => new ProtoWriter().Map(1, m.Journaled), r => new RunManifestOk(ReadMap(r))),
        C<RunManifestMismatch>("m.mismatch", m => new ProtoWriter().String(1, m.Key).String(2, m.Journaled).String(3, m.Configured),
            r => { string k = "", j = "", c = ""; Fields(r, f => { switch (f) { case 1: k = r.String(); break; case 2: j = r.String(); break; case 3: c = r.String(); break; default: r.Skip(); break; } }); return new RunManifestMismatch(k, j, c); }),
        C<RunManifestRecorded>("m.ev.recorded", m => new ProtoWriter().Map(1, m.Entries), r => new RunManifestRecorded(ReadMap(r))),
        // Weight sync
        C<WeightsAvailable>("w.avail", m => new ProtoWriter().Int64(1, m.Version).String(2, m.Sha256).Int64(3, m.SizeBytes).Int32(4, m.ChunkSize),
            r => { long v = 0, size = 0; string h = ""; int cs = 0; Fields(r, f => { switch (f) { case 1: v = r.Int64(); break; case 2: h = r.String(); break; case 3: size = r.Int64(); break; case 4: cs = r.Int32(); break; default: r.Skip(); break; } }); return new WeightsAvailable(v, h, size, cs); }),
        C<SubscribeWeights>("w.sub", _ => new ProtoWriter(), r => { Fields(r, _ => r.Skip()); return new SubscribeWeights(); }),
        C<FetchWeightChunk>("w.fetch", m => new ProtoWriter().Int64(1, m.Version).Int32(2, m.Index),
            r => { long v = 0; int i = 0; Fields(r, f => { if (f == 1) v = r.Int64(); else if (f == 2) i = r.Int32(); else r.Skip(); }); return new FetchWeightChunk(v, i); }),
        C<WeightChunk>("w.chunk", m => new ProtoWriter().Int64(1, m.Version).Int32(2, m.Index).Bytes(3, m.Data).String(4, m.Sha256),
            r => { long v = 0; int i = 0; var d = Google.Protobuf.ByteString.Empty; string h = ""; Fields(r, f => { switch (f) { case 1: v = r.Int64(); break; case 2: i = r.Int32(); break; case 3: d = r.Bytes(); break; case 4: h = r.String(); break; default: r.Skip(); break; } }); return new WeightChunk(v, i, d, h); }),
        C<WeightVersionGone>("w.gone", m => new ProtoWriter().Int64(1, m.Version).Int64(2, m.Latest),
            r => { long v = 0, l = 0; Fields(r, f => { if (f == 1) v = r.Int64(); else if (f == 2) l = r.Int64(); else r.Skip(); }); return new WeightVersionGone(v, l); }),
        // SCST: learner, rollout and reward workers
        C<RegisterWorker>("s.register", m => new ProtoWriter().String(1, m.Kind).String(2, m.Node),
            r => { string k = "", n = ""; Fields(r, f => { if (f == 1) k = r.String(); else if (f == 2) n = r.String(); else r.Skip(); }); return new RegisterWorker(k, n); }),
        CS<WorkerWelcome>("s.welcome", m => new ProtoWriter().String(1, Akka.Serialization.Serialization.SerializedActorPath(m.Publisher)).Int64(2, m.PolicyVersion),
            (r, sys) => { string p = ""; long v = 0; Fields(r, f => { if (f == 1) p = r.String(); else if (f == 2) v = r.Int64(); else r.Skip(); }); return new WorkerWelcome(sys.Provider.ResolveActorRef(p), v); }),
        C<RolloutRequest>("s.rollout.req", m => new ProtoWriter().Int64(1, m.RequestId).PackedInt32(2, m.ImageIds).Int64(3, m.MinVersion).Bool(4, m.ExactVersion).Int64(5, m.Seed),
            r => { long id = 0, v = 0, seed = 0; bool ex = false; var ids = new List<int>(); Fields(r, f => { switch (f) { case 1: id = r.Int64(); break; case 2: r.Int32s(ids); break; case 3: v = r.Int64(); break; case 4: ex = r.Bool(); break; case 5: seed = r.Int64(); break; default: r.Skip(); break; } }); return new RolloutRequest(id, [.. ids], v, ex, seed); }),
        C<RolloutResult>("s.rollout.res", m => new ProtoWriter().Int64(1, m.RequestId).PackedInt32(2, m.ImageIds).Int32(3, m.K).Int32(4, m.SeqLen).PackedInt64(5, m.Tokens)
                .Strings(6, m.Captions).PackedFloat(7, m.BehaviourLogProbs).PackedInt32(8, m.Lengths).Int64(9, m.PolicyVersion).Strings(10, m.GreedyCaptions).String(11, m.Node),
            r =>
            {
                long id = 0, v = 0; int k = 0, len = 0; string node = "";
                List<int> ids = [], lengths = []; List<long> tokens = []; List<string> caps = [], greedy = []; List<float> lp = [];
                Fields(r, f =>
                {
                    switch (f)
                    {
                        case 1: id = r.Int64(); break; case 2: r.Int32s(ids); break; case 3: k = r.Int32(); break; case 4: len = r.Int32(); break;
                        case 5: r.Int64s(tokens); break; case 6: caps.Add(r.String()); break; case 7: r.Floats(lp); break; case 8: r.Int32s(lengths); break;
                        case 9: v = r.Int64(); break; case 10: greedy.Add(r.String()); break; case 11: node = r.String(); break; default: r.Skip(); break;
                    }
                });
                return new RolloutResult(id, [.. ids], k, len, [.. tokens], [.. caps], [.. lp], [.. lengths], v, [.. greedy], node);
            }),
        C<ScoreRequest>("s.score.req", m => new ProtoWriter().Int64(1, m.RequestId).PackedInt32(2, m.ImageIds).Int32(3, m.K).Strings(4, m.Captions).Strings(5, m.GreedyCaptions),
            r => { long id = 0; int k = 0; List<int> ids = []; List<string> caps = [], greedy = []; Fields(r, f => { switch (f) { case 1: id = r.Int64(); break; case 2: r.Int32s(ids); break; case 3: k = r.Int32(); break; case 4: caps.Add(r.String()); break; case 5: greedy.Add(r.String()); break; default: r.Skip(); break; } }); return new ScoreRequest(id, [.. ids], k, [.. caps], [.. greedy]); }),
        C<ScoreResult>("s.score.res", m => new ProtoWriter().Int64(1, m.RequestId).PackedDouble(2, m.Rewards).PackedDouble(3, m.Advantages).PackedDouble(4, m.GreedyRewards),
            r => { long id = 0; List<double> rw = [], adv = [], g = []; Fields(r, f => { switch (f) { case 1: id = r.Int64(); break; case 2: r.Doubles(rw); break; case 3: r.Doubles(adv); break; case 4: r.Doubles(g); break; default: r.Skip(); break; } }); return new ScoreResult(id, [.. rw], [.. adv], [.. g]); }),
        C<TrainingFinished>("s.finished", m => new ProtoWriter().Int64(1, m.Updates),
            r => { long u = 0; Fields(r, f => { if (f == 1) u = r.Int64(); else r.Skip(); }); return new TrainingFinished(u); }),
        C<GetLearnerStatus>("s.status.get", _ => new ProtoWriter(), r => { Fields(r, _ => r.Skip()); return new GetLearnerStatus(); }),
        C<LearnerStatus>("s.status", m => new ProtoWriter().Int64(1, m.Step).Int64(2, m.PolicyVersion).Int64(3, m.TotalUpdates).String(4, m.Mode).Bool(5, m.Running)
                .Bool(6, m.Finished).Int64(7, m.SamplesConsumed).Int64(8, m.RolloutsDroppedStale).Int32(9, m.RolloutWorkers).Int32(10, m.RewardWorkers)
                .Int32(11, m.QueuedBatches).Int32(12, m.InFlightBatches).Int32(13, m.CursorEpoch).Int32(14, m.CursorPosition).String(15, m.Node),
            r =>
            {
                long step = 0, v = 0, total = 0, samples = 0, dropped = 0; string mode = "", node = ""; bool running = false, finished = false;
                int rw = 0, sw = 0, queued = 0, inFlight = 0, epoch = 0, pos = 0;
                Fields(r, f =>
                {
                    switch (f)
                    {
                        case 1: step = r.Int64(); break; case 2: v = r.Int64(); break; case 3: total = r.Int64(); break; case 4: mode = r.String(); break;
                        case 5: running = r.Bool(); break; case 6: finished = r.Bool(); break; case 7: samples = r.Int64(); break; case 8: dropped = r.Int64(); break;
                        case 9: rw = r.Int32(); break; case 10: sw = r.Int32(); break; case 11: queued = r.Int32(); break; case 12: inFlight = r.Int32(); break;
                        case 13: epoch = r.Int32(); break; case 14: pos = r.Int32(); break; case 15: node = r.String(); break; default: r.Skip(); break;
                    }
                });
                return new LearnerStatus(step, v, total, mode, running, finished, samples, dropped, rw, sw, queued, inFlight, epoch, pos, node);
            }),
        C<LearnerStepApplied>("s.ev.step", m => new ProtoWriter().Int64(1, m.Update).Int64(2, m.PolicyVersion).Int32(3, m.CursorEpoch).Int32(4, m.CursorPosition)
                .PackedInt32(5, m.BatchSizes).PackedInt32(6, m.BatchEpochs).PackedInt32(7, m.ImageIds).PackedInt32(8, m.PendingSizes).PackedInt32(9, m.PendingEpochs)
                .PackedInt32(10, m.PendingIds).Int64(11, m.RolloutsDroppedStale),
            r =>
            {
                long u = 0, v = 0, dropped = 0; int ep = 0, pos = 0;
                List<int> sizes = [], epochs = [], ids = [], psizes = [], pepochs = [], pids = [];
                Fields(r, f =>
                {
                    switch (f)
                    {
                        case 1: u = r.Int64(); break; case 2: v = r.Int64(); break; case 3: ep = r.Int32(); break; case 4: pos = r.Int32(); break;
                        case 5: r.Int32s(sizes); break; case 6: r.Int32s(epochs); break; case 7: r.Int32s(ids); break; case 8: r.Int32s(psizes); break;
                        case 9: r.Int32s(pepochs); break; case 10: r.Int32s(pids); break; case 11: dropped = r.Int64(); break; default: r.Skip(); break;
                    }
                });
                return new LearnerStepApplied(u, v, ep, pos, [.. sizes], [.. epochs], [.. ids], [.. psizes], [.. pepochs], [.. pids], dropped);
            }),
    ];

    static readonly Dictionary<Type, Codec> ByType = Codecs.ToDictionary(c => c.Type);
    static readonly Dictionary<string, Codec> ByManifest = Codecs.ToDictionary(c => c.Manifest);

    /// <summary>Types this serializer knows; tests check that every IScstMessage is among them.</summary>
    public static IReadOnlyCollection<Type> RegisteredTypes => ByType.Keys;

    static Codec C<T>(string manifest, Func<T, ProtoWriter> write, Func<ProtoReader, T> read) where T : notnull =>
        new(manifest, typeof(T), o => write((T)o).ToBytes(), (b, _) => read(new ProtoReader(b)));

    /// <summary>A codec whose message holds actor refs: they travel as full paths and resolve against this system.</summary>
    static Codec CS<T>(string manifest, Func<T, ProtoWriter> write, Func<ProtoReader, ExtendedActorSystem, T> read) where T : notnull =>
        new(manifest, typeof(T), o => write((T)o).ToBytes(), (b, sys) => read(new ProtoReader(b), sys));

    static void Fields(ProtoReader r, Action<int> onField)
    {
        for (int f; (f = r.Next()) != 0;) onField(f);
    }

    static ImmutableSortedDictionary<string, string> ReadMap(ProtoReader r)
    {
        var d = new Dictionary<string, string>();
        Fields(r, f => { if (f == 1) r.MapEntry(d); else r.Skip(); });
        return d.ToImmutableSortedDictionary(StringComparer.Ordinal);
    }

    public override string Manifest(object o) =>
        ByType.TryGetValue(o.GetType(), out var c) ? c.Manifest
            : throw new ArgumentException($"{o.GetType().FullName} implements IScstMessage but has no protobuf codec in {nameof(ScstProtobufSerializer)}");

    public override byte[] ToBinary(object obj) =>
        ByType.TryGetValue(obj.GetType(), out var c) ? c.Write(obj)
            : throw new ArgumentException($"{obj.GetType().FullName} implements IScstMessage but has no protobuf codec in {nameof(ScstProtobufSerializer)}");

    public override object FromBinary(byte[] bytes, string manifest) =>
        ByManifest.TryGetValue(manifest, out var c) ? c.Read(bytes, system)
            : throw new System.Runtime.Serialization.SerializationException($"unknown Scst message manifest '{manifest}' (journal written by a newer version?)");
}
