using Microsoft.Extensions.Logging;
using Scst.Training;
using Scst.Training.Configuration;
using Scst.Actors.Weights;

namespace Scst.Actors.Pipeline;

/// <param name="RunDir">Checkpoints, weights/ (published versions), summary.json.</param>
/// <param name="WeightPlane">Where and how this node serves published weight files (scst.weights.port, TLS).</param>
/// <param name="RewardPoolSize">The pool size, weight server, versions kept, publish interval, timeout and in-flight count
/// have their defaults in Scst.Host.Cluster.ScstClusterOptions (scst.* keys, docs/cluster.md).</param>
/// <param name="PublishEvery">Async mode: publish weights every N updates (sync always publishes every update).</param>
/// <param name="RequestTimeout">A rollout or score request unanswered this long goes to another worker.</param>
/// <param name="InFlightPerWorker">Async mode: requests queued per rollout worker, so it never waits for the learner.</param>
/// <param name="RolloutCommand">The command line that starts a rollout node for this learner, logged while it has none.</param>
/// <param name="WeightsInAmpDType">scst.weights.dtype = auto: weight files carry linear layers in the amp dtype (bf16) when the run uses one.</param>
/// <param name="Progress">Called (on the learner's thread) as updates and evaluations advance, for the console.</param>
/// <param name="Ended">Called once the run has ended (its summary, or null when it failed to start), before the entity stops: the host flushes the run's metrics and draws its plots.</param>
/// <param name="Released">Called when the entity stops (ended, handed off or killed with its node's actor system).</param>
public sealed record LearnerSettings(
    string RunId,
    ScstConfig Config,
    string RunDir,
    IMetricsSink Metrics,
    ILogger Log,
    int RewardPoolSize,
    WeightServerSettings WeightPlane,
    int KeepVersions,
    int PublishEvery,
    TimeSpan RequestTimeout,
    int InFlightPerWorker,
    RewardContext? LocalReward = null,
    long? StopAfterUpdates = null,
    string? RolloutCommand = null,
    TimeSpan? WaitingReportEvery = null,
    Action<TrainingProgress>? Progress = null,
    bool WeightsInAmpDType = true,
    Action<TrainSummary?>? Ended = null,
    Action? Released = null)
{
    public TimeSpan Timeout => RequestTimeout;
}

/// <summary>
/// What a learner node gives every run entity it hosts: <see cref="SettingsFor"/> builds a run's settings from its spec
/// (loading the config text, opening its metrics; may throw for a bad config or corpus), <see cref="DescribeUserError"/>
/// turns a user's mistake into its one-line message (null: unexpected, reported with the trace in <see cref="TraceFile"/>).
/// </summary>
public sealed record LearnerNode(Func<RunSpec, LearnerSettings> SettingsFor, Func<Exception, string?> DescribeUserError, string? TraceFile = null);
