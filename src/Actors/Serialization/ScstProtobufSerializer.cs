using System.Collections.Immutable;
using Akka.Actor;
using Akka.Serialization;
using Scst.Actors.Data;
using Scst.Actors.Persistence;
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

    sealed record Codec(string Manifest, Type Type, Func<object, byte[]> Write, Func<byte[], object> Read);

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
    ];

    static readonly Dictionary<Type, Codec> ByType = Codecs.ToDictionary(c => c.Type);
    static readonly Dictionary<string, Codec> ByManifest = Codecs.ToDictionary(c => c.Manifest);

    /// <summary>Types this serializer knows; tests check that every IScstMessage is among them.</summary>
    public static IReadOnlyCollection<Type> RegisteredTypes => ByType.Keys;

    static Codec C<T>(string manifest, Func<T, ProtoWriter> write, Func<ProtoReader, T> read) where T : notnull =>
        new(manifest, typeof(T), o => write((T)o).ToBytes(), b => read(new ProtoReader(b)));

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
        ByManifest.TryGetValue(manifest, out var c) ? c.Read(bytes)
            : throw new System.Runtime.Serialization.SerializationException($"unknown Scst message manifest '{manifest}' (journal written by a newer version?)");
}
