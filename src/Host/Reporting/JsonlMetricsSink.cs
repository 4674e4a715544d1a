using System.Text.Json;
using Scst.Training;

namespace Scst.Host.Reporting;

/// <summary>One JSON object per line: <c>{"time":..., "phase":..., "step":..., "loss":...}</c>. Appends, so resumed runs continue the file.</summary>
public sealed class JsonlMetricsSink : IMetricsSink
{
    private readonly StreamWriter _writer;

    public JsonlMetricsSink(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    public void Log(string phase, long step, IReadOnlyDictionary<string, double> values)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("time", DateTimeOffset.UtcNow.ToString("O"));
            json.WriteString("phase", phase);
            json.WriteNumber("step", step);
            foreach (var (k, v) in values)
            {
                if (double.IsFinite(v)) json.WriteNumber(k, v);
                else json.WriteString(k, v.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            json.WriteEndObject();
        }
        _writer.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }

    public void Dispose() => _writer.Dispose();
}
