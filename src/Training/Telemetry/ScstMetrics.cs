using System.Diagnostics.Metrics;

namespace Scst.Training.Telemetry;

/// <summary>
/// The "Scst" meter: the training figures metrics.jsonl holds, as System.Diagnostics.Metrics instruments, so an
/// OpenTelemetry exporter (the Host's Prometheus endpoint) or a MeterListener can read them live. Recording costs
/// next to nothing when nobody listens. Rates (updates/s, samples/s) are the exporter's rate() over the counters.
/// </summary>
public static class ScstMetrics
{
    public const string MeterName = "Scst";

    public static readonly Meter Meter = new(MeterName, "1.0");

    // One instrument a line: name, unit, description (what an exporter shows next to the figures).
    public static readonly Counter<long> Updates = Counter("scst.updates", "{update}", "Optimizer updates applied (journaled, for the actor learner); rate() gives updates/s");
    public static readonly Counter<long> Samples = Counter("scst.samples", "{image}", "Training images consumed by applied updates; rate() gives samples/s");
    public static readonly Histogram<double> Reward = Histogram<double>("scst.reward", "{cider_d}", "Mean reward of the sampled captions, one value per update");
    public static readonly Histogram<double> Baseline = Histogram<double>("scst.baseline", "{cider_d}", "Mean SCST baseline (greedy or leave-one-out reward), one value per update");
    public static readonly Histogram<long> Staleness = Histogram<long>("scst.policy.staleness", "{version}", "Policy versions between the weights a rollout was sampled with and the update that used it (0 in sync mode)");
    public static readonly Histogram<double> RolloutLatency = Histogram<double>("scst.rollout.latency", "s", "Learner: time from sending a rollout request to receiving its captions");
    public static readonly Histogram<double> PersistenceLag = Histogram<double>("scst.persistence.lag", "s", "Learner: time to journal an update (Persist call to its handler)");

    static Counter<long> Counter(string name, string unit, string description) => Meter.CreateCounter<long>(name, unit, description);
    static Histogram<T> Histogram<T>(string name, string unit, string description) where T : struct => Meter.CreateHistogram<T>(name, unit, description);

    static long _policyVersion = -1, _queued = -1, _inFlight = -1, _ready = -1;
    static Func<int>? _nodes;

    static IEnumerable<Measurement<long>> One(long v, params KeyValuePair<string, object?>[] tags) => v < 0 ? [] : [new(v, tags)];

    static ScstMetrics()
    {
        Meter.CreateObservableGauge<long>("scst.policy.version", () => One(Interlocked.Read(ref _policyVersion)), "{version}",
            "Policy version (updates applied) of this process's trainer or learner");
        Meter.CreateObservableGauge<long>("scst.learner.pending_rollouts", () =>
                One(Interlocked.Read(ref _queued), new KeyValuePair<string, object?>("state", "queued"))
                    .Concat(One(Interlocked.Read(ref _inFlight), new KeyValuePair<string, object?>("state", "in_flight")))
                    .Concat(One(Interlocked.Read(ref _ready), new KeyValuePair<string, object?>("state", "scored"))),
            "{batch}", "Learner queue depths: micro-batches waiting for a rollout worker, out at workers, scored and waiting for an update (async)");
        Meter.CreateObservableGauge<int>("scst.cluster.nodes", () => _nodes is { } f ? [new Measurement<int>(f())] : (IEnumerable<Measurement<int>>)[],
            "{node}", "Cluster members this node sees Up");
    }

    /// <summary>One applied update: the counters, and reward/baseline from the update's logged values when it has them (SCST).</summary>
    public static void RecordUpdate(string mode, long samples, long policyVersion, IReadOnlyDictionary<string, double> values)
    {
        var tag = new KeyValuePair<string, object?>("mode", mode);
        Updates.Add(1, tag);
        Samples.Add(samples, tag);
        if (values.TryGetValue("reward_mean", out var r)) Reward.Record(r, tag);
        if (values.TryGetValue("baseline_mean", out var b)) Baseline.Record(b, tag);
        Interlocked.Exchange(ref _policyVersion, policyVersion);
    }

    public static void SetQueueDepths(int queued, int inFlight, int scored)
    {
        Interlocked.Exchange(ref _queued, queued);
        Interlocked.Exchange(ref _inFlight, inFlight);
        Interlocked.Exchange(ref _ready, scored);
    }

    /// <summary>Where the node count comes from (the cluster state of this process's ActorSystem); null stops reporting it.</summary>
    public static void ObserveNodeCount(Func<int>? count) => _nodes = count;
}
