using System.Collections.Immutable;
using Akka.Actor;
using Akka.Serialization;
using Google.Protobuf;
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
        // Weight sync
        C<WeightsAvailable, P.WeightsAvailable>("w.avail",
            m => new()
            {
                Version = m.Version, Sha256 = m.Sha256 ?? "", SizeBytes = m.SizeBytes, ChunkSize = m.ChunkSize, Url = m.Url ?? "",
                ChunkSha256 = ByteString.CopyFrom(m.ChunkSha256 ?? []),
            },
            p => new(p.Version, p.Sha256, p.SizeBytes, p.ChunkSize, p.Url, p.ChunkSha256.ToByteArray())),
        C<SubscribeWeights, P.SubscribeWeights>("w.sub", _ => new(), _ => new()),
        // SCST: learner, rollout and reward workers
        C<RegisterWorker, P.RegisterWorker>("s.register",
            m => new() { Kind = m.Kind ?? "", Node = m.Node ?? "", Fingerprint = { m.Fingerprint.Fields.ToDictionary(f => f.Key, f => f.Value) } },
            p => new(p.Kind, p.Node, new WorkerFingerprint([.. p.Fingerprint]))),
        C<WorkerRefused, P.WorkerRefused>("s.refused", m => new() { Reason = m.Reason ?? "" }, p => new(p.Reason)),
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
                GreedyCaptions = { m.GreedyCaptions }, Node = m.Node ?? "", Device = m.Device ?? "",
                WeightsWaitS = m.WeightsWaitS, GenerateS = m.GenerateS,
            },
            p => new(p.RequestId, [.. p.ImageIds], p.K, p.SeqLen, [.. p.Tokens], [.. p.Captions], [.. p.BehaviourLogProbs], [.. p.Lengths],
                p.PolicyVersion, [.. p.GreedyCaptions], p.Node, p.Device, p.WeightsWaitS, p.GenerateS)),
        C<ScoreRequest, P.ScoreRequest>("s.score.req",
            m => new() { RequestId = m.RequestId, ImageIds = { m.ImageIds }, K = m.K, Captions = { m.Captions }, GreedyCaptions = { m.GreedyCaptions } },
            p => new(p.RequestId, [.. p.ImageIds], p.K, [.. p.Captions], [.. p.GreedyCaptions])),
        C<ScoreResult, P.ScoreResult>("s.score.res",
            m => new() { RequestId = m.RequestId, Rewards = { m.Rewards }, Advantages = { m.Advantages }, GreedyRewards = { m.GreedyRewards } },
            p => new(p.RequestId, [.. p.Rewards], [.. p.Advantages], [.. p.GreedyRewards])),
        C<TrainingFinished, P.TrainingFinished>("s.finished", m => new() { Updates = m.Updates, Stopped = m.Stopped }, p => new(p.Updates, p.Stopped)),
        C<StopLearner, P.StopLearner>("s.stop", _ => new(), _ => StopLearner.Instance),
        C<GetLearnerStatus, P.GetLearnerStatus>("s.status.get", _ => new(), _ => new()),
        C<LearnerStatus, P.LearnerStatus>("s.status",
            m => new()
            {
                Step = m.Step, PolicyVersion = m.PolicyVersion, TotalUpdates = m.TotalUpdates, Mode = m.Mode ?? "", Running = m.Running,
                Finished = m.Finished, SamplesConsumed = m.SamplesConsumed, RolloutsDroppedStale = m.RolloutsDroppedStale,
                RolloutWorkers = m.RolloutWorkers, RewardWorkers = m.RewardWorkers, QueuedBatches = m.QueuedBatches,
                InFlightBatches = m.InFlightBatches, CursorEpoch = m.CursorEpoch, CursorPosition = m.CursorPosition, Node = m.Node ?? "",
                RunId = m.RunId ?? "",
            },
            p => new(p.Step, p.PolicyVersion, p.TotalUpdates, p.Mode, p.Running, p.Finished, p.SamplesConsumed, p.RolloutsDroppedStale,
                p.RolloutWorkers, p.RewardWorkers, p.QueuedBatches, p.InFlightBatches, p.CursorEpoch, p.CursorPosition, p.Node, p.RunId)),
        // Runs
        C<StartRun, P.StartRun>("s.run.start", m => new() { Spec = SpecToProto(m.Spec), StopAfterUpdates = m.StopAfterUpdates },
            p => new(SpecFromProto(p.Spec), p.StopAfterUpdates)),
        C<WatchRun, P.WatchRun>("s.run.watch", _ => new(), _ => WatchRun.Instance),
        C<GetRunSpec, P.GetRunSpec>("s.run.spec.get", _ => new(), _ => GetRunSpec.Instance),
        C<RunAccepted, P.RunAccepted>("s.run.accepted",
            m => new() { RunId = m.RunId ?? "", Update = m.Update, TotalUpdates = m.TotalUpdates, Mode = m.Mode ?? "", Node = m.Node ?? "" },
            p => new(p.RunId, p.Update, p.TotalUpdates, p.Mode, p.Node)),
        C<RunRefused, P.RunRefused>("s.run.refused", m => new() { RunId = m.RunId ?? "", Reason = m.Reason ?? "" }, p => new(p.RunId, p.Reason)),
        C<RunEnded, P.RunEnded>("s.run.ended",
            m => new()
            {
                RunId = m.RunId ?? "", Updates = m.Updates, SamplesConsumed = m.SamplesConsumed, ElapsedS = m.ElapsedS, Completed = m.Completed,
                Stopped = m.Stopped, FinalCheckpoint = m.FinalCheckpoint ?? "", Metrics = { m.Metrics }, Error = m.Error ?? "", UserError = m.UserError,
                Node = m.Node ?? "",
            },
            p => new(p.RunId, p.Updates, p.SamplesConsumed, p.ElapsedS, p.Completed, p.Stopped, p.FinalCheckpoint, p.Metrics.ToImmutableDictionary(),
                p.Error, p.UserError, p.Node)),
        C<RunAnnounced, P.RunAnnounced>("s.run.announce", m => new() { RunId = m.RunId ?? "", Mode = m.Mode ?? "", Node = m.Node ?? "" },
            p => new(p.RunId, p.Mode, p.Node)),
        C<RunSubmitted, P.RunSubmitted>("s.ev.run", m => new() { Spec = SpecToProto(m.Spec) }, p => new(SpecFromProto(p.Spec))),
        C<LearnerStepApplied, P.LearnerStepApplied>("s.ev.step", StepToProto, StepFromProto),
        C<LearnerStepSkipped, P.LearnerStepSkipped>("s.ev.skip",
            m => new() { Step = StepToProto(m.Step), Reason = m.Reason ?? "" }, p => new(StepFromProto(p.Step), p.Reason)),
    ];

    static P.RunSpec SpecToProto(RunSpec s) =>
        new() { RunId = s.RunId ?? "", RunDir = s.RunDir ?? "", ConfigPath = s.ConfigPath ?? "", ConfigText = s.ConfigText ?? "" };

    static RunSpec SpecFromProto(P.RunSpec? p) => p is null ? new RunSpec("", "", "", "") : new(p.RunId, p.RunDir, p.ConfigPath, p.ConfigText);

    static P.LearnerStepApplied StepToProto(LearnerStepApplied m) => new()
    {
        Update = m.Update, PolicyVersion = m.PolicyVersion, CursorEpoch = m.CursorEpoch, CursorPosition = m.CursorPosition,
        BatchSizes = { m.BatchSizes }, BatchEpochs = { m.BatchEpochs }, ImageIds = { m.ImageIds },
        PendingSizes = { m.PendingSizes }, PendingEpochs = { m.PendingEpochs }, PendingIds = { m.PendingIds },
        RolloutsDroppedStale = m.RolloutsDroppedStale,
    };

    static LearnerStepApplied StepFromProto(P.LearnerStepApplied p) =>
        new(p.Update, p.PolicyVersion, p.CursorEpoch, p.CursorPosition, [.. p.BatchSizes], [.. p.BatchEpochs], [.. p.ImageIds],
            [.. p.PendingSizes], [.. p.PendingEpochs], [.. p.PendingIds], p.RolloutsDroppedStale);

    /// <summary>
    /// Manifests of the removed data-shard (d.*) and run-manifest (m.*) messages. Older journals may hold them under
    /// their own persistence ids, which nothing replays now; they stay reserved so a new message never reads old bytes.
    /// </summary>
    public static readonly IReadOnlySet<string> RetiredManifests = new HashSet<string>(StringComparer.Ordinal)
    {
        "d.req", "d.batch", "d.none", "d.ack", "d.acked", "d.getstatus", "d.status", "d.error",
        "d.ev.init", "d.ev.issued", "d.ev.consumed", "d.ev.epoch", "m.verify", "m.ok", "m.mismatch", "m.ev.recorded",
        "w.fetch", "w.chunk", "w.gone",
    };

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

    public override string Manifest(object o) => Find(o).Manifest;

    public override byte[] ToBinary(object obj) => Find(obj).ToProto(obj).ToByteArray();

    public override object FromBinary(byte[] bytes, string manifest) =>
        ByManifest.TryGetValue(manifest, out var c) ? c.FromBytes(bytes, system)
            : throw new System.Runtime.Serialization.SerializationException(RetiredManifests.Contains(manifest)
                ? $"Scst message manifest '{manifest}' belonged to the data shards or run manifest (never on the training path) or to weight chunks over Akka (replaced by the weight plane), all removed; no actor of this version reads it"
                : $"unknown Scst message manifest '{manifest}' (journal written by a newer version?)");

    static Codec Find(object o) =>
        ByType.TryGetValue(o.GetType(), out var c) ? c
            : throw new ArgumentException($"{o.GetType().FullName} implements IScstMessage but has no protobuf codec in {nameof(ScstProtobufSerializer)}");
}
