using Akka.Actor;
using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;
using Scst.Actors.Pipeline;
using Scst.Training;
using Scst.Actors.Weights;
using Scst.Host.Reporting;

namespace Scst.Host.Cluster;

/// <summary>
/// <c>train --role learner|rollout|reward|all</c>: SCST distributed over actors. A learner (or all) node runs the
/// persistent learner singleton and writes the run's outputs; rollout and reward nodes join with --seed-nodes, load
/// the corpus from the same config, and work until the learner says the run is over.
/// </summary>
public static class ClusterTraining
{
    /// <param name="configFile">The config's path, for the command line a waiting learner prints (null: the learner names only its address).</param>
    public static async Task<int> RunAsync(ScstConfig config, NodeOptions node, int? stopAfter, CancellationToken ct, string? configFile = null)
    {
        Directory.CreateDirectory(node.RunDir);
        var actors = new ScstActorHosting();
        ScstClusterOptions options;
        ClusterNode cluster;
        try
        {
            options = ScstClusterOptions.From(node);
            cluster = ClusterNode.Create(options, actors: akka => actors.AddTo(akka, options));
        }
        catch (Exception e) when (e is ArgumentException or IOException or Akka.Configuration.ConfigurationException
                                  or Scst.Actors.Persistence.JournalCorruptException or Scst.Actors.Persistence.JournalUnavailableException)
        {
            Console.Error.WriteLine($"error: {CommandErrors.Describe(e) ?? e.Message}");
            return 2;
        }
        await using (cluster)
        {
            var log = cluster.LoggerFactory.CreateLogger("train");
            var roles = options.Roles;
            var finished = new TaskCompletionSource<TrainingFinished>(TaskCreationOptions.RunContinuationsAsynchronously);
            var learnerDone = new TaskCompletionSource<TrainSummary?>(TaskCreationOptions.RunContinuationsAsynchronously);
            CompositeMetricsSink? sink = null;
            // The learner reports from its own thread; the console's progress display exists only while this node waits for it.
            Action<TrainingProgress>? progressTarget = null;
            void Relay(TrainingProgress p) => Volatile.Read(ref progressTarget)?.Invoke(p);
            try
            {
                // Loaded before the node starts, so a bad corpus stops here with its own message.
                if (roles.Contains("learner"))
                {
                    var localReward = RewardContext.Load(config, log);
                    var metricsFile = Path.Combine(options.RunDir, "metrics.jsonl");
                    sink = new CompositeMetricsSink(new JsonlMetricsSink(metricsFile), new TensorBoardSink(Path.Combine(options.RunDir, "tensorboard")));
                    var metrics = sink;
                    actors.Learner = system => new LearnerSettings(config, node.RunDir, metrics, log, learnerDone,
                        LocalReward: localReward, RewardPoolSize: options.RewardActors,
                        WeightPlane: new WeightServerSettings(options.Hostname, options.PublicHostname ?? options.Hostname, options.WeightPort,
                            options.WeightKeepVersions, TlsSetup.WeightPlane(options)),
                        KeepVersions: options.WeightKeepVersions,
                        PublishEvery: options.AsyncPublishEvery, RequestTimeout: options.RequestTimeout,
                        InFlightPerWorker: options.InFlightPerWorker, StopAfterUpdates: stopAfter,
                        RolloutCommand: RolloutCommandLine.For(Akka.Cluster.Cluster.Get(system).SelfAddress.ToString(), node, configFile),
                        Progress: Relay, WeightsInAmpDType: options.WeightDType == "auto");
                }
                if (roles.Contains("rollout"))
                {
                    var fetcher = new WeightFetcherSettings(options.WeightFetchAttempts, TlsSetup.WeightPlane(options), WholeFileSha256: options.WeightVerifyWholeFile);
                    RunSetup.InitializeRuntime(config.Run);
                    var cuda = TorchSharp.torch.cuda.is_available() ? TorchSharp.torch.cuda.device_count() : 0;
                    actors.RolloutDevices = RolloutDevices.Resolve(options.RolloutDevices, options.RolloutActors, config.Run.Device, cuda);
                    log.LogInformation("rollout devices: {Devices} (one rollout actor each)", string.Join(", ", actors.RolloutDevices));
                    actors.Rollout = (i, device, proxy) => new RolloutSettings(config, Path.Combine(node.RunDir, "replicas", $"rollout-{i}"), proxy, log, fetcher, finished, device);
                }
                if (options.Role == "reward")
                {
                    var reward = RewardContext.Load(config, log);
                    actors.RewardPool = proxy => RewardPool.Props(reward, options.RewardActors, proxy, finished);
                }
                try { await cluster.StartAsync(ct); }
                catch (Exception e) when (e is ArgumentException or IOException or Akka.Configuration.ConfigurationException)
                {
                    Console.Error.WriteLine($"error: {CommandErrors.Describe(e) ?? e.Message}");
                    return 2;
                }
                var proxy = cluster.Registry.Get<LearnerActor>();

                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, cluster.Stopping);
                var stopped = Task.Delay(Timeout.Infinite, stop.Token);
                if (roles.Contains("learner"))
                {
                    var done = TrainingConsole.WithProgress("learner", cluster.LoggerFactory.CreateLogger("learner"), progress =>
                    {
                        Volatile.Write(ref progressTarget, progress);
                        try { return Task.WhenAny(learnerDone.Task, stopped).GetAwaiter().GetResult(); }
                        finally { Volatile.Write(ref progressTarget, null); }
                    });
                    var signalled = done != learnerDone.Task;
                    if (signalled)
                    {
                        if (cluster.System.WhenTerminated.IsCompleted) { log.LogWarning("stopped before the run finished; start the same command again to resume"); return 3; }
                        // Graceful: the learner completes the update being journaled, writes a checkpoint and tells its workers.
                        log.LogWarning("stop requested: finishing the update in hand and writing a checkpoint (Ctrl-C / SIGTERM again exits at once)");
                        proxy.Tell(StopLearner.Instance);
                    }
                    TrainSummary? summary;
                    try { summary = await learnerDone.Task; }
                    catch (NonfiniteUpdatesException e)
                    {
                        // The learner wrote its checkpoint and summary and journaled every skipped update: the same command resumes.
                        log.LogError("{Message}", e.Message);
                        await cluster.LeaveAsync(proxy, TimeSpan.FromSeconds(10));
                        return 2;
                    }
                    // Let TrainingFinished reach the workers before this node leaves.
                    await Task.Delay(500, CancellationToken.None);
                    await cluster.LeaveAsync(proxy, TimeSpan.FromSeconds(10));
                    sink!.Dispose();
                    sink = null;
                    var plots = PlotWriter.Write(Path.Combine(node.RunDir, "metrics.jsonl"), Path.Combine(node.RunDir, "plots"));
                    if (summary is not null && summary.Metrics.Count > 0) TrainingConsole.PrintMetrics($"scst ({summary.Updates} updates)", summary.Metrics);
                    log.LogInformation("scst ({Mode}, actors): {Updates} updates, {Samples} samples in {Elapsed:F1} s; summary {Summary}; plots {Plots}",
                        config.Scst.Mode, summary?.Updates, summary?.SamplesConsumed, summary?.ElapsedS, Path.Combine(node.RunDir, "summary.json"), plots.Count);
                    if (signalled && summary is { Completed: false })
                        log.LogWarning("stopped at update {Update} with a checkpoint ({Checkpoint}); start the same command again to continue", summary.Updates, summary.FinalCheckpoint);
                    return 0;
                }
                var which = await Task.WhenAny(finished.Task, stopped);
                if (finished.Task.IsFaulted && finished.Task.Exception!.InnerException is WorkerRefusedException refused)
                {
                    await cluster.LeaveAsync(proxy, TimeSpan.FromSeconds(10));
                    log.LogError("{Message}", refused.Message);
                    return 2;
                }
                if (which == finished.Task)
                {
                    // Leave before the learner's node is gone, so no proxy goes looking for it and nobody sees this node vanish.
                    await cluster.LeaveAsync(proxy, TimeSpan.FromSeconds(10));
                    var f = finished.Task.Result;
                    if (f.Stopped) log.LogInformation("{Role} node: the learner stopped the run at update {Updates}; start this node again with it to continue", node.Role, f.Updates);
                    else log.LogInformation("{Role} node: the run finished after {Updates} updates", node.Role, f.Updates);
                    return 0;
                }
                if (!cluster.System.WhenTerminated.IsCompleted)
                {
                    // Ctrl-C / SIGTERM: leave, so the learner sees this node go at once and hands its work to the others.
                    await cluster.LeaveAsync(proxy, TimeSpan.FromSeconds(10));
                    log.LogInformation("{Role} node: stopped on request and left the cluster", node.Role);
                    return 0;
                }
                // Downed (e.g. the learner died: the split-brain resolver keeps the learner's side).
                log.LogWarning("{Role} node: left the cluster before the run finished; start it again to rejoin", node.Role);
                return 3;
            }
            // Errors (a bad corpus, a corrupt checkpoint, a full disk) leave through CommandErrors: one line, exit 2.
            finally
            {
                sink?.Dispose();
            }
        }
    }
}
