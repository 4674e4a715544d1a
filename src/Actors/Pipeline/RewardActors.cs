using Akka.Actor;
using Akka.Routing;
using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;
using Scst.Training;
using Scst.Reward;

namespace Scst.Actors.Pipeline;

/// <summary>What every reward actor of a process shares: the training references and their CIDEr-D document frequencies.</summary>
public sealed class RewardContext(IReadOnlyList<IReadOnlyList<string>> references, DocumentFrequency df, BaselineKind baseline, WorkerFingerprint fingerprint)
{
    /// <summary>What a reward node registers with (<see cref="WorkerFingerprint.ForReward"/>).</summary>
    public WorkerFingerprint Fingerprint { get; } = fingerprint;
    public IReadOnlyList<IReadOnlyList<string>> References { get; } = references;
    public DocumentFrequency Df { get; } = df;
    public BaselineKind Baseline { get; } = baseline;

    /// <summary>Reads the corpus annotations (pixels are only decoded on use, so none are) and builds the train df.</summary>
    public static RewardContext Load(ScstConfig config, ILogger log)
    {
        var corpus = CaptionCorpus.Load(config, log);
        return new RewardContext(corpus.Train.References, RunSetup.TrainDocumentFrequency(config, corpus), config.Scst.Baseline,
            WorkerFingerprint.ForReward(config, corpus.Train.References));
    }
}

/// <summary>
/// Scores one rollout at a time: CIDEr-D rewards against all references of each image and the self-critical
/// advantages (steps 2–3 of <see cref="ScstUpdate"/>); each actor owns its CIDEr-D scratch buffers.
/// </summary>
public sealed class RewardActor : ReceiveActor
{
    public static Props Props(RewardContext ctx) => Akka.Actor.Props.Create(() => new RewardActor(ctx));

    public RewardActor(RewardContext ctx)
    {
        var reward = new CiderDReward(ctx.Df);
        Receive<ScoreRequest>(r =>
        {
            var refs = r.ImageIds.Select(i => ctx.References[i]).ToList();
            var rewards = reward.Score(refs, [.. r.Captions]);
            var greedy = r.GreedyCaptions.IsDefaultOrEmpty ? null : reward.Score(refs, [.. r.GreedyCaptions]);
            var adv = SelfCritical.Advantages(ctx.Baseline, rewards, r.K, greedy);
            Sender.Tell(new ScoreResult(r.RequestId, [.. rewards], [.. adv], greedy is null ? [] : [.. greedy]));
        });
    }
}

/// <summary>
/// A process's reward pool: a round-robin router over <c>size</c> reward actors (one per core by default). On a
/// reward node it registers with the learner; the learner's own fallback pool does not.
/// </summary>
public sealed class RewardPool : ReceiveActor, IWithTimers
{
    public ITimerScheduler Timers { get; set; } = null!;
    readonly IActorRef? _learner;

    sealed record Register { public static readonly Register Instance = new(); }

    public static Props Props(RewardContext ctx, int size, IActorRef? learner, TaskCompletionSource<TrainingFinished>? finished = null) =>
        Akka.Actor.Props.Create(() => new RewardPool(ctx, size, learner, finished));

    public RewardPool(RewardContext ctx, int size, IActorRef? learner, TaskCompletionSource<TrainingFinished>? finished)
    {
        _learner = learner;
        var router = Context.ActorOf(RewardActor.Props(ctx).WithRouter(new RoundRobinPool(Math.Max(1, size))), "scorers");
        var node = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();
        Receive<ScoreRequest>(r => router.Forward(r));
        Receive<Register>(_ => _learner!.Tell(new RegisterWorker(RegisterWorker.Reward, node, ctx.Fingerprint)));
        Receive<WorkerWelcome>(_ => { });
        Receive<WorkerRefused>(r =>
        {
            Timers.Cancel("register");
            finished?.TrySetException(new WorkerRefusedException($"the learner refused this reward node: {r.Reason}; start it with the learner's config and build"));
        });
        Receive<TrainingFinished>(f =>
        {
            Timers.Cancel("register"); // the learner is leaving: nothing to register with
            finished?.TrySetResult(f);
        });
    }

    protected override void PreStart()
    {
        if (_learner is not null) Timers.StartPeriodicTimer("register", Register.Instance, TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }
}
