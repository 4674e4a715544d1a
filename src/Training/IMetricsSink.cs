namespace Scst.Training;

/// <summary>
/// Where a run's numbers go (metrics.jsonl, TensorBoard, plots). <paramref name="phase"/> groups curves:
/// "ce", "scst", "val", "test". Implementations must tolerate being called from the training thread only.
/// </summary>
public interface IMetricsSink : IDisposable
{
    void Log(string phase, long step, IReadOnlyDictionary<string, double> values);
}

/// <summary>Metrics of a component that reports nothing (rollout replicas, benches).</summary>
public sealed class NullMetricsSink : IMetricsSink
{
    public static readonly NullMetricsSink Instance = new();
    public void Log(string phase, long step, IReadOnlyDictionary<string, double> values) { }
    public void Dispose() { }
}

/// <summary>A progress report after each update (phase "ce" / "scst") or evaluation batch (phase "eval:val" ...).</summary>
public sealed record TrainingProgress(string Phase, long Done, long Total, IReadOnlyDictionary<string, double> Last);
