using System.Collections.Immutable;
using Akka.Actor;
using Akka.Serialization;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Scst.Actors.Data;
using Scst.Actors.Persistence;
using Scst.Actors.Pipeline;
using Scst.Actors.Weights;
using P = Scst.Actors.Serialization.Proto;

namespace Scst.Actors.Serialization;

/// <summary>
/// Protobuf serializer for every <see cref="Messages.IScstMessage"/>: the wire types are generated at build time from
/// src/Actors/Messages/*.proto; this class maps them to the C# records. Manifests and field numbers are part of the
/// journal format (tests/data/journal-v1 pins them): never renumber or reuse them, only add.
/// </summary>
public sealed class ScstProtobufSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 6106;
    public override int Identifier => Id;

    sealed record Codec(string Manifest, Type Type, Func<object, IMessage> ToProto, Func<byte[], ExtendedActorSystem, object> FromBytes);

    static readonly Codec[] Codecs =
    [
        // Data shards: commands and replies
        C<RequestBatch, P.RequestBatch>("d.req", m => new() { Shard = m.Shard, MaxImages = m.MaxImages }, p => new(p.Shard, p.MaxImages)),
        C<Batch, P.Batch>("d.batch", m => new() { Shard = m.Shard, Epoch = m.Epoch, Seq = m.Seq, ImageIds = { m.ImageIds } },
            p => new(p.Shard, p.Epoch, p.Seq, [.. p.ImageIds])),
        C<NoBatchAvailable, P.NoBatchAvailable>("d.none", m => new() { Shard = m.Shard, Epoch = m.Epoch, Outstanding = m.Outstanding },
            p => new(p.Shard, p.Epoch, p.Outstanding)),
        C<AckBatch, P.AckBatch>("d.ack", m => new() { Shard = m.Shard, Seq = m.Seq }, p => new(p.Shard, p.Seq)),
        C<BatchAcked, P.BatchAcked>("d.acked", m => new() { Shard = m.Shard, Seq = m.Seq, Duplicate = m.Duplicate }, p => new(p.Shard, p.Seq, p.Duplicate)),
        C<GetShardStatus, P.GetShardStatus>("d.getstatus", m => new() { Shard = m.Shard }, p => new(p.Shard)),
        C<ShardStatus, P.ShardStatus>("d.status",
            m => new()
            {
                Shard = m.Shard, Epoch = m.Epoch, Size = m.Size, Cursor = m.Cursor, Outstanding = m.Outstanding,
                ConsumedThisEpoch = m.ConsumedThisEpoch, EpochsCompleted = m.EpochsCompleted,
            },
            p => new(p.Shard, p.Epoch, p.Size, p.Cursor, p.Outstanding, p.ConsumedThisEpoch, p.EpochsCompleted)),
        C<ShardError, P.ShardError>("d.error", m => new() { Shard = m.Shard, Message = m.Message ?? "" }, p => new(p.Shard, p.Message)),
        // Data shards: journal events
        C<ShardInitialized, P.ShardInitialized>("d.ev.init", m => new() { ShardCount = m.ShardCount, DatasetSize = m.DatasetSize, Seed = m.Seed },
            p => new(p.ShardCount, p.DatasetSize, p.Seed)),
        C<BatchIssued, P.BatchIssued>("d.ev.issued", m => new() { Seq = m.Seq, Epoch = m.Epoch, Offset = m.Offset, Count = m.Count },
            p => new(p.Seq, p.Epoch, p.Offset, p.Count)),
        C<BatchConsumed, P.BatchConsumed>("d.ev.consumed", m => new() { Seq = m.Seq }, p => new(p.Seq)),
        C<EpochStarted, P.EpochStarted>("d.ev.epoch", m => new() { Epoch = m.Epoch }, p => new(p.Epoch)),
        // Run manifest
        C<VerifyRunManifest, P.VerifyRunManifest>("m.verify", m => AddSorted(new P.VerifyRunManifest(), p => p.Expected, m.Expected), p => new(ToSorted(p.Expected))),
        C<RunManifestOk, P.RunManifestOk>("m.ok", m => AddSorted(new P.RunManifestOk(), p => p.Journaled, m.Journaled), p => new(ToSorted(p.Journaled))),
        C<RunManifestMismatch, P.RunManifestMismatch>("m.mismatch",
            m => new() { Key = m.Key ?? "", Journaled = m.Journaled ?? "", Configured = m.Configured ?? "" }, p => new(p.Key, p.Journaled, p.Configured)),
        C<RunManifestRecorded, P.RunManifestRecorded>("m.ev.recorded", m => AddSorted(new P.RunManifestRecorded(), p => p.Entries, m.Entries), p => new(ToSorted(p.Entries))),
        // Weight sync
        C<WeightsAvailable, P.WeightsAvailable>("w.avail",
            m => new() { Version = m.Version, Sha256 = m.Sha256 ?? "", SizeBytes = m.SizeBytes, ChunkSize = m.ChunkSize },
            p => new(p.Version, p.Sha256, p.SizeBytes, p.ChunkSize)),
        C<SubscribeWeights, P.SubscribeWeights>("w.sub", _ => new(), _ => new()),
        C<FetchWeightChunk, P.FetchWeightChunk>("w.fetch", m => new() { Version = m.Version, Index = m.Index }, p => new(p.Version, p.Index)),
        C<WeightChunk, P.WeightChunk>("w.chunk",
            m => new() { Version = m.Version, Index = m.Index, Data = m.Data ?? ByteString.Empty, Sha256 = m.Sha256 ?? "" },
            p => new(p.Version, p.Index, p.Data, p.Sha256)),
        C<WeightVersionGone, P.WeightVersionGone>("w.gone", m => new() { Version = m.Version, Latest = m.Latest }, p => new(p.Version, p.Latest)),
        // SCST: learner, rollout and reward workers
        C<RegisterWorker, P.RegisterWorker>("s.register", m => new() { Kind = m.Kind ?? "", Node = m.Node ?? "" }, p => new(p.Kind, p.Node)),
        new("s.welcome", typeof(WorkerWelcome),
            o => new P.WorkerWelcome
            {
                Publisher = Akka.Serialization.Serialization.SerializedActorPath(((WorkerWelcome)o).Publisher),
                PolicyVersion = ((WorkerWelcome)o).PolicyVersion,
            },
            (b, sys) =>
            {
                var p = P.WorkerWelcome.Parser.ParseFrom(b);
                return new WorkerWelcome(sys.Provider.ResolveActorRef(p.Publisher), p.PolicyVersion);
            }),
        C<RolloutRequest, P.RolloutRequest>("s.rollout.req",
            m => new() { RequestId = m.RequestId, ImageIds = { m.ImageIds }, MinVersion = m.MinVersion, ExactVersion = m.ExactVersion, Seed = m.Seed },
            p => new(p.RequestId, [.. p.ImageIds], p.MinVersion, p.ExactVersion, p.Seed)),
        C<RolloutResult, P.RolloutResult>("s.rollout.res",
            m => new()
            {
                RequestId = m.RequestId, ImageIds = { m.ImageIds }, K = m.K, SeqLen = m.SeqLen, Tokens = { m.Tokens }, Captions = { m.Captions },
                BehaviourLogProbs = { m.BehaviourLogProbs }, Lengths = { m.Lengths }, PolicyVersion = m.PolicyVersion,
                GreedyCaptions = { m.GreedyCaptions }, Node = m.Node ?? "",
            },
            p => new(p.RequestId, [.. p.ImageIds], p.K, p.SeqLen, [.. p.Tokens], [.. p.Captions], [.. p.BehaviourLogProbs], [.. p.Lengths],
                p.PolicyVersion, [.. p.GreedyCaptions], p.Node)),
        C<ScoreRequest, P.ScoreRequest>("s.score.req",
            m => new() { RequestId = m.RequestId, ImageIds = { m.ImageIds }, K = m.K, Captions = { m.Captions }, GreedyCaptions = { m.GreedyCaptions } },
            p => new(p.RequestId, [.. p.ImageIds], p.K, [.. p.Captions], [.. p.GreedyCaptions])),
        C<ScoreResult, P.ScoreResult>("s.score.res",
            m => new() { RequestId = m.RequestId, Rewards = { m.Rewards }, Advantages = { m.Advantages }, GreedyRewards = { m.GreedyRewards } },
            p => new(p.RequestId, [.. p.Rewards], [.. p.Advantages], [.. p.GreedyRewards])),
        C<TrainingFinished, P.TrainingFinished>("s.finished", m => new() { Updates = m.Updates }, p => new(p.Updates)),
        C<GetLearnerStatus, P.GetLearnerStatus>("s.status.get", _ => new(), _ => new()),
        C<LearnerStatus, P.LearnerStatus>("s.status",
            m => new()
            {
                Step = m.Step, PolicyVersion = m.PolicyVersion, TotalUpdates = m.TotalUpdates, Mode = m.Mode ?? "", Running = m.Running,
                Finished = m.Finished, SamplesConsumed = m.SamplesConsumed, RolloutsDroppedStale = m.RolloutsDroppedStale,
                RolloutWorkers = m.RolloutWorkers, RewardWorkers = m.RewardWorkers, QueuedBatches = m.QueuedBatches,
                InFlightBatches = m.InFlightBatches, CursorEpoch = m.CursorEpoch, CursorPosition = m.CursorPosition, Node = m.Node ?? "",
            },
            p => new(p.Step, p.PolicyVersion, p.TotalUpdates, p.Mode, p.Running, p.Finished, p.SamplesConsumed, p.RolloutsDroppedStale,
                p.RolloutWorkers, p.RewardWorkers, p.QueuedBatches, p.InFlightBatches, p.CursorEpoch, p.CursorPosition, p.Node)),
        C<LearnerStepApplied, P.LearnerStepApplied>("s.ev.step",
            m => new()
            {
                Update = m.Update, PolicyVersion = m.PolicyVersion, CursorEpoch = m.CursorEpoch, CursorPosition = m.CursorPosition,
                BatchSizes = { m.BatchSizes }, BatchEpochs = { m.BatchEpochs }, ImageIds = { m.ImageIds },
                PendingSizes = { m.PendingSizes }, PendingEpochs = { m.PendingEpochs }, PendingIds = { m.PendingIds },
                RolloutsDroppedStale = m.RolloutsDroppedStale,
            },
            p => new(p.Update, p.PolicyVersion, p.CursorEpoch, p.CursorPosition, [.. p.BatchSizes], [.. p.BatchEpochs], [.. p.ImageIds],
                [.. p.PendingSizes], [.. p.PendingEpochs], [.. p.PendingIds], p.RolloutsDroppedStale)),
    ];

    static readonly Dictionary<Type, Codec> ByType = Codecs.ToDictionary(c => c.Type);
    static readonly Dictionary<string, Codec> ByManifest = Codecs.ToDictionary(c => c.Manifest);

    /// <summary>Types this serializer knows; tests check that every IScstMessage is among them.</summary>
    public static IReadOnlyCollection<Type> RegisteredTypes => ByType.Keys;

    static Codec C<T, TProto>(string manifest, Func<T, TProto> toProto, Func<TProto, T> fromProto)
        where T : notnull where TProto : IMessage<TProto>, new()
    {
        var parser = new MessageParser<TProto>(() => new TProto());
        return new(manifest, typeof(T), o => toProto((T)o), (b, _) => fromProto(parser.ParseFrom(b)));
    }

    /// <summary>Map entries go out in ordinal key order (as the journal's first writer did), so equal maps give equal bytes.</summary>
    static TProto AddSorted<TProto>(TProto proto, Func<TProto, MapField<string, string>> field, IReadOnlyDictionary<string, string> map)
    {
        var into = field(proto);
        foreach (var (k, v) in map.OrderBy(p => p.Key, StringComparer.Ordinal)) into.Add(k, v);
        return proto;
    }

    static ImmutableSortedDictionary<string, string> ToSorted(MapField<string, string> map) => map.ToImmutableSortedDictionary(StringComparer.Ordinal);

    public override string Manifest(object o) => Find(o).Manifest;

    public override byte[] ToBinary(object obj) => Find(obj).ToProto(obj).ToByteArray();

    public override object FromBinary(byte[] bytes, string manifest) =>
        ByManifest.TryGetValue(manifest, out var c) ? c.FromBytes(bytes, system)
            : throw new System.Runtime.Serialization.SerializationException($"unknown Scst message manifest '{manifest}' (journal written by a newer version?)");

    static Codec Find(object o) =>
        ByType.TryGetValue(o.GetType(), out var c) ? c
            : throw new ArgumentException($"{o.GetType().FullName} implements IScstMessage but has no protobuf codec in {nameof(ScstProtobufSerializer)}");
}
