namespace Scst.Training;

/// <summary>
/// Where a run's numbers go (metrics.jsonl, TensorBoard, plots). <paramref name="phase"/> groups curves:
/// "ce", "scst", "val", "test". Implementations must tolerate being called from the training thread only.
/// </summary>
public interface IMetricsSink : IDisposable
{
    void Log(string phase, long step, IReadOnlyDictionary<string, double> values);
}
