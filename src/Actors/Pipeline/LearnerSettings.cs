using Microsoft.Extensions.Logging;
using Scst.Training;
using Scst.Training.Configuration;

namespace Scst.Actors.Pipeline;

/// <param name="RunDir">Checkpoints, weights/ (published versions), summary.json.</param>
/// <param name="PublishEvery">Async mode: publish weights every N updates (sync always publishes every update).</param>
/// <param name="RequestTimeout">A rollout or score request unanswered this long goes to another worker.</param>
/// <param name="InFlightPerWorker">Async mode: requests queued per rollout worker, so it never waits for the learner.</param>
/// <param name="RolloutCommand">The command line that starts a rollout node for this learner, logged while it has none.</param>
/// <param name="Progress">Called (on the learner's thread) as updates and evaluations advance, for the console.</param>
public sealed record LearnerSettings(
    ScstConfig Config,
    string RunDir,
    IMetricsSink Metrics,
    ILogger Log,
    TaskCompletionSource<TrainSummary?> Done,
    RewardContext? LocalReward = null,
    int RewardPoolSize = 2,
    int ChunkSize = 65536,
    int KeepVersions = 2,
    int PublishEvery = 1,
    TimeSpan? RequestTimeout = null,
    int InFlightPerWorker = 2,
    int? StopAfterUpdates = null,
    string? RolloutCommand = null,
    TimeSpan? WaitingReportEvery = null,
    Action<TrainingProgress>? Progress = null)
{
    public TimeSpan Timeout => RequestTimeout ?? TimeSpan.FromSeconds(60);
}
