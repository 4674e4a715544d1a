using Akka.Actor;
using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;
using Scst.Actors.Pipeline;
using Scst.Training;
using Scst.Actors.Weights;
using Scst.Host.Reporting;

namespace Scst.Host.Cluster;

/// <summary>
/// <c>train --role learner|rollout|reward|all|submit</c>: SCST distributed over actors. A learner (or all) node hosts
/// the shard region of learner entities, one per run, and submits its own run to it; <c>submit</c> sends a run to a
/// cluster that is already running and follows it. Rollout and reward nodes join with --seed-nodes, load the corpus
/// from the same config, serve one run (--run-id, or the first announced) and work until its learner says it is over.
/// </summary>
public static class ClusterTraining
{
    /// <param name="configFile">The config's path: its text is what the run's entity journals and rebuilds the run from. Null
    /// (benches, which change a loaded config): <paramref name="config"/> itself, which only this process can host.</param>
    public static async Task<int> RunAsync(ScstConfig config, NodeOptions node, int? stopAfter, CancellationToken ct, string? configFile = null)
    {
        var runId = node.RunId ?? RunIds.FromRunDir(node.RunDir);
        if (RunIds.Problem(runId) is { } bad)
        {
            Console.Error.WriteLine($"error: --run-id: {bad}");
            return 2;
        }
        var submits = node.ClusterRoles.Contains("learner") || node.Role == "submit";
        // The run folder of a submitted run belongs to the learner node that hosts it.
        if (node.Role != "submit") Directory.CreateDirectory(node.RunDir);
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
            LearnerHost? host = null;
            // Loaded before the node starts, so a bad corpus stops here with its own message.
            if (roles.Contains("learner"))
            {
                host = new LearnerHost(node, options, cluster.LoggerFactory);
                actors.Learner = host.For;
            }
            // --role all serves its own run; a worker node the run it names, or the first one announced.
            actors.WorkerRunId = node.Role == "all" ? runId : node.RunId;
            if (roles.Contains("rollout"))
            {
                if (options.RolloutMemoryBudget > 0 || options.RolloutRunWeights.Count > 0)
                    throw new ArgumentException($"{(options.RolloutMemoryBudget > 0 ? "scst.rollout.memory-budget" : "scst.rollout.run-weights")} applies to rollout nodes shared by runs " +
                                                "(node --role rollout --config BASE); a train --role rollout node holds one run: remove the key");
                var fetcher = new WeightFetcherSettings(options.WeightFetchAttempts, TlsSetup.WeightPlane(options), WholeFileSha256: options.WeightVerifyWholeFile);
                RunSetup.InitializeRuntime(config.Run);
                var cuda = TorchSharp.torch.cuda.is_available() ? TorchSharp.torch.cuda.device_count() : 0;
                actors.RolloutDevices = RolloutDevices.Resolve(options.RolloutDevices, options.RolloutActors, config.Run.Device, cuda);
                log.LogInformation("rollout devices: {Devices} (one rollout actor each)", string.Join(", ", actors.RolloutDevices));
                actors.Rollout = (i, device, link) => new RolloutSettings(config, Path.Combine(node.RunDir, "replicas", $"rollout-{i}"), link, log, fetcher, finished, device);
            }
            if (options.Role == "reward")
            {
                var reward = RewardContext.Load(config, log);
                actors.RewardPool = link => RewardPool.Props(reward, options.RewardActors, link, finished);
            }
            try { await cluster.StartAsync(ct); }
            catch (Exception e) when (e is ArgumentException or IOException or Akka.Configuration.ConfigurationException)
            {
                Console.Error.WriteLine($"error: {CommandErrors.Describe(e) ?? e.Message}");
                return 2;
            }
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, cluster.Stopping);
            var stopped = Task.Delay(Timeout.Infinite, stop.Token);
            if (submits)
            {
                var spec = configFile is null
                    ? new RunSpec(runId, Path.GetFullPath(node.RunDir), "", Scst.Host.Configuration.ConfigPrinter.ToYaml(config))
                    : new RunSpec(runId, Path.GetFullPath(node.RunDir), Path.GetFullPath(configFile), await File.ReadAllTextAsync(configFile, CancellationToken.None));
                host?.UseConfig(spec, config);
                return await FollowRun(cluster, host, spec, stopAfter, stopped, log);
            }
            var which = await Task.WhenAny(finished.Task, stopped);
            if (finished.Task.IsFaulted && finished.Task.Exception!.InnerException is WorkerRefusedException refused)
            {
                await cluster.LeaveAsync(TimeSpan.FromSeconds(10));
                log.LogError("{Message}", refused.Message);
                return 2;
            }
            if (which == finished.Task)
            {
                // Leave before the learner's node is gone, so nobody sees this node vanish.
                await cluster.LeaveAsync(TimeSpan.FromSeconds(10));
                var f = finished.Task.Result;
                if (f.Stopped) log.LogInformation("{Role} node: the learner stopped the run at update {Updates}; start this node again with it to continue", node.Role, f.Updates);
                else log.LogInformation("{Role} node: the run finished after {Updates} updates", node.Role, f.Updates);
                return 0;
            }
            if (!cluster.System.WhenTerminated.IsCompleted)
            {
                // Ctrl-C / SIGTERM: leave, so the learner sees this node go at once and hands its work to the others.
                await cluster.LeaveAsync(TimeSpan.FromSeconds(10));
                log.LogInformation("{Role} node: stopped on request and left the cluster", node.Role);
                return 0;
            }
            // Downed (e.g. the learner died: the split-brain resolver keeps the learner's side).
            log.LogWarning("{Role} node: left the cluster before the run finished; start it again to rejoin", node.Role);
            return 3;
        }
    }

    /// <summary>
    /// Submits the run and follows it to its end, showing its progress when its entity lives in this process. A first
    /// Ctrl-C / SIGTERM stops it (and every run this learner node hosts) with a checkpoint. A learner node then stays
    /// until the other runs it hosts have ended.
    /// </summary>
    static async Task<int> FollowRun(ClusterNode cluster, LearnerHost? host, RunSpec spec, int? stopAfter, Task stopped, ILogger log)
    {
        var region = cluster.Registry.Get<LearnerActor>();
        var ended = new TaskCompletionSource<RunEnded>(TaskCreationOptions.RunContinuationsAsynchronously);
        Action<TrainingProgress>? progressTarget = null;
        host?.ShowProgress(spec.RunId, p => Volatile.Read(ref progressTarget)?.Invoke(p));
        cluster.System.ActorOf(RunSubmitter.Props(region, new StartRun(spec, stopAfter ?? 0), ended,
            a => log.LogInformation("run {RunId}: {Mode} on learner {Node} at update {Update}/{Total}", a.RunId, a.Mode, a.Node, a.Update, a.TotalUpdates)), "submit");
        var done = TrainingConsole.WithProgress("learner", cluster.LoggerFactory.CreateLogger("learner"), progress =>
        {
            Volatile.Write(ref progressTarget, progress);
            try { return Task.WhenAny(ended.Task, stopped).GetAwaiter().GetResult(); }
            finally { Volatile.Write(ref progressTarget, null); }
        });
        var signalled = done != ended.Task;
        if (signalled)
        {
            if (cluster.System.WhenTerminated.IsCompleted) { log.LogWarning("stopped before the run finished; start the same command again to resume"); return 3; }
            // Graceful: each learner completes the update being journaled, writes a checkpoint and tells its workers.
            log.LogWarning("stop requested: finishing the update in hand and writing a checkpoint (Ctrl-C / SIGTERM again exits at once)");
            StopRuns(region, [spec.RunId, .. host?.HostedRuns ?? []]);
        }
        RunEnded end;
        try { end = await ended.Task; }
        catch (ArgumentException refused)
        {
            Console.Error.WriteLine($"error: {refused.Message}");
            await cluster.LeaveAsync(TimeSpan.FromSeconds(10));
            return 2;
        }
        // One line, as CommandErrors prints the errors of a run in this process (the trace, if any, is in the hosting node's log).
        if (end.Failed) Console.Error.WriteLine($"error: {end.Error}");
        else
        {
            if (end.Metrics.Count > 0) TrainingConsole.PrintMetrics($"scst ({end.Updates} updates)", end.MetricsBySplit());
            log.LogInformation("scst (run {RunId}, actors): {Updates} updates, {Samples} samples in {Elapsed:F1} s; summary {Summary}",
                end.RunId, end.Updates, end.SamplesConsumed, end.ElapsedS, Path.Combine(spec.RunDir, "summary.json"));
            if (signalled && !end.Completed)
                log.LogWarning("stopped at update {Update} with a checkpoint ({Checkpoint}); start the same command again to continue", end.Updates, end.FinalCheckpoint);
        }
        if (host is not null) await WhileHosting(host, region, stopped, signalled, log);
        // Let TrainingFinished reach the workers before this node leaves.
        await Task.Delay(500, CancellationToken.None);
        await cluster.LeaveAsync(TimeSpan.FromSeconds(10));
        return end.Failed ? (end.UserError ? 2 : 1) : 0;
    }

    /// <summary>A learner node whose own run ended stays while it hosts others (leaving would stop them); a signal stops them too.</summary>
    static async Task WhileHosting(LearnerHost host, IActorRef region, Task stopped, bool stopping, ILogger log)
    {
        // Its own run's entity is still on its way out for a moment; only runs that stay are worth a line.
        var said = DateTime.UtcNow.AddSeconds(-25);
        var deadline = DateTime.MaxValue;
        while (host.HostedRuns.Count > 0 && DateTime.UtcNow < deadline)
        {
            if (!stopping && stopped.IsCompleted)
            {
                stopping = true;
                StopRuns(region, host.HostedRuns);
            }
            if (stopping && deadline == DateTime.MaxValue) deadline = DateTime.UtcNow.AddMinutes(2);
            if (DateTime.UtcNow - said > TimeSpan.FromSeconds(30))
            {
                log.LogInformation("this learner node still hosts run(s) {Runs}; it stays until they end (Ctrl-C stops them with a checkpoint)", string.Join(", ", host.HostedRuns));
                said = DateTime.UtcNow;
            }
            await Task.Delay(250, CancellationToken.None);
        }
    }

    /// <summary>A learner node told to stop: every run it hosts stops with a checkpoint (within two minutes) before it leaves.</summary>
    public static async Task StopHostedRuns(LearnerHost host, ClusterNode node)
    {
        var region = node.Registry.Get<LearnerActor>();
        if (host.HostedRuns.Count > 0)
        {
            node.LoggerFactory.CreateLogger("learner").LogWarning("stop requested: stopping run(s) {Runs} with a checkpoint", string.Join(", ", host.HostedRuns));
            await WhileHosting(host, region, Task.CompletedTask, stopping: false, node.LoggerFactory.CreateLogger("learner"));
        }
        await node.LeaveAsync(TimeSpan.FromSeconds(10));
    }

    static void StopRuns(IActorRef region, IEnumerable<string> runIds)
    {
        foreach (var id in runIds.Distinct()) LearnerRegion.Tell(region, id, StopLearner.Instance);
    }
}
