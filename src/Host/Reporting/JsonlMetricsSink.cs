using System.Text.Json;
using Scst.Training;

namespace Scst.Host.Reporting;

/// <summary>
/// One JSON object per line: <c>{"time":..., "phase":..., "step":..., "loss":...}</c>. Appends, so resumed runs continue
/// the file. Each line is one unbuffered write; a write that failed half-way (a full disk) leaves a partial last line,
/// which the next run cuts off before appending, so readers never meet a broken line.
/// </summary>
public sealed class JsonlMetricsSink : IMetricsSink
{
    private readonly FileStream _file;
    private readonly string _path;

    public JsonlMetricsSink(string path)
    {
        _path = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
        _file = new FileStream(_path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
        _file.SetLength(CompleteLinesLength(_file));
        _file.Seek(0, SeekOrigin.End);
    }

    /// <summary>The length of the file up to and including its last newline.</summary>
    internal static long CompleteLinesLength(FileStream file)
    {
        var buffer = new byte[4096];
        for (var end = file.Length; end > 0;)
        {
            var n = (int)Math.Min(buffer.Length, end);
            file.Seek(end - n, SeekOrigin.Begin);
            file.ReadExactly(buffer, 0, n);
            var nl = Array.LastIndexOf(buffer, (byte)'\n', n - 1);
            if (nl >= 0) return end - n + nl + 1;
            end -= n;
        }
        return 0;
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
        buffer.WriteByte((byte)'\n');
        try { _file.Write(buffer.GetBuffer(), 0, (int)buffer.Length); }
        catch (IOException e) when (e.GetType() == typeof(IOException))
        {
            throw new IOException($"{_path}: metrics line for {phase} step {step} not written ({e.Message})", e) { HResult = e.HResult };
        }
    }

    public void Dispose() => _file.Dispose();
}
