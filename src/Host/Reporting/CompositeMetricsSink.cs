using Scst.Training;

namespace Scst.Host.Reporting;

public sealed class CompositeMetricsSink(params IMetricsSink[] sinks) : IMetricsSink
{
    public void Log(string phase, long step, IReadOnlyDictionary<string, double> values)
    {
        foreach (var s in sinks) s.Log(phase, step, values);
    }

    public void Dispose()
    {
        foreach (var s in sinks) s.Dispose();
    }
}
