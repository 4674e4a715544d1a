using System.Collections.Concurrent;
using Akka.Actor;
using Microsoft.Extensions.Logging;
using Scst.Actors.Pipeline;
using Scst.Actors.Weights;
using Scst.Host.Configuration;
using Scst.Host.Reporting;
using Scst.Training;
using Scst.Training.Configuration;

namespace Scst.Host.Cluster;

/// <summary>
/// A learner node's side of its run entities: builds each run's <see cref="LearnerSettings"/> from the
/// <see cref="RunSpec"/> its entity journaled (the config text parsed as the file it came from, the run's metrics
/// sinks, its own reward pool, a weight server), draws its plots when it ends, and knows which runs this node hosts
/// (a learner node leaves only once they have ended or stopped).
/// </summary>
public sealed class LearnerHost(NodeOptions node, ScstClusterOptions options, ILoggerFactory loggers)
{
    readonly ConcurrentDictionary<string, byte> _hosted = new();
    string? _fixedPortRun;
    readonly ConcurrentDictionary<string, Action<TrainingProgress>> _progress = new();
    readonly ConcurrentDictionary<string, (string Sha256, ScstConfig Config)> _configs = new();

    /// <summary>Runs whose entity lives on this node now.</summary>
    public IReadOnlyCollection<string> HostedRuns => _hosted.Keys.ToArray();

    /// <summary>The config this process loaded (or a bench built) for a run it submits: used when the run's entity lands here.</summary>
    public void UseConfig(RunSpec spec, ScstConfig config) => _configs[spec.RunId] = (spec.ConfigSha256, config);

    /// <summary>Console progress for a run submitted from this process, used if its entity lands on this node.</summary>
    public void ShowProgress(string runId, Action<TrainingProgress> progress) => _progress[runId] = progress;

    public LearnerNode For(ActorSystem system) => new(spec => SettingsFor(system, spec), CommandErrors.Describe, CommandErrors.RunLog);

    /// <summary>The run's config from the text its entity journaled, read as the file it came from (relative paths resolve against it).</summary>
    public static ScstConfig ConfigOf(RunSpec spec)
    {
        if (spec.ConfigPath.Length == 0)
            throw new ArgumentException($"run '{spec.RunId}' was submitted with a config built in its submitting process (a bench); only that process can host it");
        var config = ConfigLoader.Parse(spec.ConfigText, spec.ConfigPath);
        if (!config.IsScst) throw new ArgumentException($"{spec.ConfigPath}: the actor learner runs SCST: the config needs an scst section (CE pre-training runs with the plain trainer)");
        return config;
    }

    LearnerSettings SettingsFor(ActorSystem system, RunSpec spec)
    {
        ScstConfig config;
        if (_configs.TryGetValue(spec.RunId, out var local) && local.Sha256 == spec.ConfigSha256) config = local.Config;
        else config = ConfigOf(spec);
        var log = loggers.CreateLogger("learner");
        var localReward = RewardContext.Load(config, log);
        Directory.CreateDirectory(spec.RunDir);
        var metricsFile = Path.Combine(spec.RunDir, "metrics.jsonl");
        var sink = new CompositeMetricsSink(new JsonlMetricsSink(metricsFile), new TensorBoardSink(Path.Combine(spec.RunDir, "tensorboard")));
        _hosted[spec.RunId] = 0;
        // Each run serves its weights itself: scst.weights.port goes to one run at a time, the others take free ports.
        var port = options.WeightPort;
        if (port != 0)
            lock (_hosted)
            {
                if (_fixedPortRun is { } holder && holder != spec.RunId && _hosted.ContainsKey(holder))
                {
                    log.LogInformation("run {RunId}: weight server on a free port (scst.weights.port {Port} serves run {Holder})", spec.RunId, port, holder);
                    port = 0;
                }
                else _fixedPortRun = spec.RunId;
            }
        var runNode = node with { RunDir = spec.RunDir };
        var closed = 0;
        void Close()
        {
            if (Interlocked.Exchange(ref closed, 1) == 0) sink.Dispose();
        }
        return new LearnerSettings(spec.RunId, config, spec.RunDir, sink, log,
            LocalReward: localReward, RewardPoolSize: options.RewardActors,
            WeightPlane: new WeightServerSettings(options.Hostname, options.PublicHostname ?? options.Hostname, port,
                options.WeightKeepVersions, TlsSetup.WeightPlane(options)),
            KeepVersions: options.WeightKeepVersions,
            PublishEvery: options.AsyncPublishEvery, RequestTimeout: options.RequestTimeout,
            InFlightPerWorker: options.InFlightPerWorker,
            RolloutCommand: RolloutCommandLine.For(Akka.Cluster.Cluster.Get(system).SelfAddress.ToString(), runNode, spec.ConfigPath, spec.RunId),
            Progress: p => { if (_progress.TryGetValue(spec.RunId, out var show)) show(p); },
            WeightsInAmpDType: options.WeightDType == "auto",
            Ended: summary =>
            {
                Close();
                if (summary is not null) PlotWriter.Write(metricsFile, Path.Combine(spec.RunDir, "plots"));
            },
            Released: () =>
            {
                Close();
                _hosted.TryRemove(spec.RunId, out _);
            });
    }
}
