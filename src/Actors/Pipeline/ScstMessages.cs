using System.Collections.Immutable;
using Akka.Actor;
using Scst.Actors.Messages;
using Scst.Training;

namespace Scst.Actors.Pipeline;

/// <summary>
/// A rollout or reward worker announcing itself to the learner (repeated, so a restarted learner finds it); the sender
/// is the worker. <see cref="Fingerprint"/> is what must match the learner's (<see cref="WorkerFingerprint"/>).
/// </summary>
public sealed record RegisterWorker(string Kind, string Node, WorkerFingerprint Fingerprint) : IScstMessage
{
    public const string Rollout = "rollout";
    public const string Reward = "reward";
}

/// <summary>The learner's answer to a worker whose fingerprint differs from its own: <see cref="Reason"/> names each differing field with both values.</summary>
public sealed record WorkerRefused(string Reason) : IScstMessage;

/// <summary>Thrown into a refused worker's completion, so its process says why and exits with code 2.</summary>
public sealed class WorkerRefusedException(string message) : Exception(message);

/// <summary>The learner's answer to a new worker: where its weights come from and the current policy version.</summary>
public sealed record WorkerWelcome(IActorRef Publisher, long PolicyVersion) : IScstMessage;

/// <summary>
/// The learner's weights at <see cref="Version"/>, handed to a rollout replica in the learner's own process (<c>--role
/// all</c>): it skips the file export, chunked fetch and load that remote replicas go through. Each replica gets its
/// own snapshot and disposes it. Never crosses nodes, so it is not an <see cref="IScstMessage"/>.
/// </summary>
public sealed record LocalPolicyWeights(long Version, PolicySnapshot Snapshot);

/// <summary>
/// Generate K captions for each image with weights of a version in [<see cref="MinVersion"/>, ...]: in sync mode
/// MinVersion is the learner's current version and nothing else is accepted; in async mode anything not older than
/// the staleness bound. <see cref="Seed"/> seeds the sampling generator, so a rollout is a pure function of
/// (weights, images, seed).
/// </summary>
public sealed record RolloutRequest(long RequestId, ImmutableArray<int> ImageIds, long MinVersion, bool ExactVersion, long Seed) : IScstMessage;

/// <summary>
/// A <see cref="RolloutBatch"/> on the wire: tokens flattened row-major ([N, SeqLen], N = images × K), plus the greedy
/// captions when the run uses the greedy baseline. Plain arrays: a realistic batch (64 images × 5 × 32 tokens) is
/// tens of KB, well under Akka.Remote's 128,000-byte frame.
/// </summary>
public sealed record RolloutResult(
    long RequestId,
    ImmutableArray<int> ImageIds,
    int K,
    int SeqLen,
    ImmutableArray<long> Tokens,
    ImmutableArray<string> Captions,
    ImmutableArray<float> BehaviourLogProbs,
    ImmutableArray<int> Lengths,
    long PolicyVersion,
    ImmutableArray<string> GreedyCaptions,
    string Node,
    string Device = "",
    double WeightsWaitS = 0,
    double GenerateS = 0) : IScstMessage
{
    /// <param name="weightsWaitS">How long the request waited at the worker for the weights it needs (their fetch and load, when they were not there yet).</param>
    /// <param name="generateS">The generation call itself (sampling, and the greedy captions for that baseline).</param>
    public static RolloutResult From(long requestId, RolloutBatch r, string[]? greedy, string node, string device = "", double weightsWaitS = 0, double generateS = 0) => new(
        requestId, [.. r.ImageIndices], r.K, r.Sequences.Length == 0 ? 0 : r.Sequences[0].Length, [.. r.Sequences.SelectMany(s => s)],
        [.. r.Captions], [.. r.BehaviourLogProbs], [.. r.Lengths], r.PolicyVersion, greedy is null ? [] : [.. greedy], node, device, weightsWaitS, generateS);

    public RolloutBatch ToBatch()
    {
        var n = Captions.Length;
        var seqs = new long[n][];
        for (var i = 0; i < n; i++) seqs[i] = Tokens.AsSpan(i * SeqLen, SeqLen).ToArray();
        return new RolloutBatch([.. ImageIds], K, seqs, [.. Captions], [.. BehaviourLogProbs], [.. Lengths], PolicyVersion);
    }
}

/// <summary>Score a rollout's captions (and greedy captions, for that baseline) against the training references.</summary>
public sealed record ScoreRequest(long RequestId, ImmutableArray<int> ImageIds, int K, ImmutableArray<string> Captions, ImmutableArray<string> GreedyCaptions) : IScstMessage;

public sealed record ScoreResult(long RequestId, ImmutableArray<double> Rewards, ImmutableArray<double> Advantages, ImmutableArray<double> GreedyRewards) : IScstMessage;

/// <summary>Asks a run's learner entity how the run stands (the `status` command); answered with <see cref="LearnerStatus"/>.</summary>
public sealed record GetLearnerStatus : IScstMessage;

/// <summary>
/// The learner's state for `status`: update <see cref="Step"/> of <see cref="TotalUpdates"/>, its policy version, how many
/// workers are registered, micro-batches queued for / out at rollout workers, and the data cursor it owns.
/// </summary>
public sealed record LearnerStatus(
    long Step,
    long PolicyVersion,
    long TotalUpdates,
    string Mode,
    bool Running,
    bool Finished,
    long SamplesConsumed,
    long RolloutsDroppedStale,
    int RolloutWorkers,
    int RewardWorkers,
    int QueuedBatches,
    int InFlightBatches,
    int CursorEpoch,
    int CursorPosition,
    string Node,
    string RunId = "") : IScstMessage;

/// <summary>
/// The run is over (the learner wrote summary.json), or <see cref="Stopped"/> on request before its end (the learner
/// wrote a checkpoint at <see cref="Updates"/> and exits; the same command continues it): workers leave and exit.
/// </summary>
public sealed record TrainingFinished(long Updates, bool Stopped = false) : IScstMessage;

/// <summary>
/// Stop the run gracefully (the learner node got SIGTERM or Ctrl-C): the update being journaled completes, work in
/// flight is abandoned, a checkpoint is written at the journaled update, workers are told, and the learner ends.
/// </summary>
public sealed record StopLearner : IScstMessage
{
    public static readonly StopLearner Instance = new();
}

/// <summary>
/// Learner journal event: update <see cref="Update"/> was applied, giving policy version <see cref="PolicyVersion"/>.
/// It names the micro-batches the update consumed (image ids, flattened with their sizes and epochs) and the data
/// cursor after it, plus batches drawn but not yet consumed (async), which a restart hands out again. Consumption is
/// journaled in the same event as the step, so a crash can never consume a batch without its update or the reverse.
/// </summary>
public sealed record LearnerStepApplied(
    long Update,
    long PolicyVersion,
    int CursorEpoch,
    int CursorPosition,
    ImmutableArray<int> BatchSizes,
    ImmutableArray<int> BatchEpochs,
    ImmutableArray<int> ImageIds,
    ImmutableArray<int> PendingSizes,
    ImmutableArray<int> PendingEpochs,
    ImmutableArray<int> PendingIds,
    long RolloutsDroppedStale) : IScstMessage;

/// <summary>
/// Learner journal event: update <see cref="LearnerStepApplied.Update"/> was skipped because its loss, reward or
/// gradient norm was not finite (<see cref="Reason"/>; Scst.Training.NonfiniteGuard). <see cref="Step"/> records what
/// it consumed and the cursor after it, exactly as an applied update would, but no optimizer step was taken: replay
/// counts it without running it, so the weights after replay are the live run's.
/// </summary>
public sealed record LearnerStepSkipped(LearnerStepApplied Step, string Reason) : IScstMessage;
