using System.Buffers.Binary;
using System.Text;
using Scst.Host.Reporting;

namespace Scst.Host.Tests;

public class ReportingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("scst-report-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Crc32CMatchesTheStandardCheckValue()
    {
        // CRC-32C check value from the Castagnoli specification (RFC 3720 appendix B.4).
        Assert.Equal(0xE3069283u, TensorBoardSink.Crc32C(Encoding.ASCII.GetBytes("123456789")));
    }

    [Fact]
    public void TensorBoardFileIsValidTfRecordFramingWithScalarTags()
    {
        string path;
        using (var tb = new TensorBoardSink(_dir))
        {
            tb.Log("scst", 7, new Dictionary<string, double> { ["reward_mean"] = 0.75, ["bad"] = double.NaN });
            path = tb.Path;
        }
        var bytes = File.ReadAllBytes(path);
        var records = new List<byte[]>();
        var at = 0;
        while (at < bytes.Length)
        {
            var len = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
            Assert.Equal(TensorBoardSink.MaskedCrc32C(bytes.AsSpan(at, 8)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8)));
            var data = bytes.AsSpan(at + 12, len).ToArray();
            Assert.Equal(TensorBoardSink.MaskedCrc32C(data), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + len)));
            records.Add(data);
            at += 12 + len + 4;
        }
        Assert.Equal(2, records.Count);
        Assert.Contains("brain.Event:2", Encoding.UTF8.GetString(records[0]));
        var scalar = Encoding.UTF8.GetString(records[1]);
        Assert.Contains("scst/reward_mean", scalar);
        Assert.DoesNotContain("scst/bad", scalar); // NaN values are not written
        Assert.True(IndexOf(records[1], BitConverter.GetBytes(0.75f)) >= 0);
    }

    [Fact]
    public void JsonlAndPlotsAreWrittenFromTheSameRows()
    {
        var jsonl = Path.Combine(_dir, "metrics.jsonl");
        using (var sink = new JsonlMetricsSink(jsonl))
        {
            for (var i = 1; i <= 5; i++)
            {
                sink.Log("ce", i, new Dictionary<string, double> { ["loss"] = 5.0 / i });
                sink.Log("scst", i, new Dictionary<string, double> { ["loss"] = 0.1, ["reward_mean"] = i, ["baseline_mean"] = i - 0.5 });
            }
            sink.Log("val", 5, new Dictionary<string, double> { ["CIDEr"] = 0.42 });
        }
        var rows = PlotWriter.Read(jsonl);
        Assert.Equal(11, rows.Count);
        Assert.Equal(1.0, rows.Single(r => r.Phase == "ce" && r.Step == 5).Values["loss"]);
        var pngs = PlotWriter.Write(jsonl, Path.Combine(_dir, "plots"));
        Assert.Equal(3, pngs.Count);
        foreach (var p in pngs)
        {
            var head = File.ReadAllBytes(p).Take(8).ToArray();
            Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, head);
        }
    }

    [Fact]
    public void CorruptMetricsLineIsNamed()
    {
        var jsonl = Path.Combine(_dir, "m.jsonl");
        File.WriteAllText(jsonl, "{\"phase\":\"ce\",\"step\":1}\n{not json\n");
        var e = Assert.Throws<InvalidDataException>(() => PlotWriter.Read(jsonl));
        Assert.Contains("m.jsonl:2", e.Message);
    }

    private static int IndexOf(byte[] hay, byte[] needle)
    {
        for (var i = 0; i + needle.Length <= hay.Length; i++)
            if (hay.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        return -1;
    }
}
