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
    public void EmaIsTheDebiasedExponentialWeightedMean()
    {
        // β = 0.5 on 1, 2, 3, by hand: 1; (0.5·1 + 2) / (0.5 + 1) = 1.6667; (0.25·1 + 0.5·2 + 3) / (0.25 + 0.5 + 1) = 4.25 / 1.75 = 2.428571.
        var s = Ema.Smooth([1, 2, 3], 0.5);
        Assert.Equal(3, s.Length);
        Assert.Equal(1.0, s[0], 12);
        Assert.Equal(1.666666666667, s[1], 12);
        Assert.Equal(2.428571428571, s[2], 12);
        // β = 0.9, a step from 0 to 10: (0.9·0 + 10) / 1.9 = 5.263158; a constant stays put; β = 0 is the raw series.
        Assert.Equal(5.263157894737, Ema.Smooth([0, 10], 0.9)[1], 12);
        Assert.Equal([4.0, 4.0, 4.0], Ema.Smooth([4, 4, 4], 0.9));
        Assert.Equal([1.0, 2.0, 3.0], Ema.Smooth([1, 2, 3], 0));
        Assert.Empty(Ema.Smooth([], 0.9));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ema.Smooth([1], 1));
    }

    [Fact]
    public void RewardPlotShowsRawRewardFaintlyItsEmaAndOnlyAGreedyBaseline()
    {
        static List<PlotWriter.Row> Rows(bool greedy) => Enumerable.Range(1, 20).Select(i =>
        {
            var v = new Dictionary<string, double> { ["loss"] = 0.1, ["reward_mean"] = i % 3, ["baseline_mean"] = greedy ? 0.5 : i % 3 };
            if (greedy) v["greedy_reward_mean"] = 0.5;
            return new PlotWriter.Row("scst", i, v);
        }).ToList();
        static ScottPlot.Plottables.Scatter[] Lines(ScottPlot.Plot p) => p.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().ToArray();

        var loo = Lines(PlotWriter.RewardPlot(Rows(greedy: false))!);
        Assert.Equal(["reward (per update)", "reward (EMA 0.9)"], loo.Select(l => l.LegendText));
        Assert.True(loo[0].Color.A < loo[1].Color.A && loo[0].LineWidth < loo[1].LineWidth, "raw reward must be fainter than its EMA");
        var ema = Ema.Smooth([.. Rows(false).Select(r => r.Values["reward_mean"])], PlotWriter.RewardSmoothing);
        Assert.Equal(ema, loo[1].Data.GetScatterPoints().Select(p => p.Y));

        var greedy = Lines(PlotWriter.RewardPlot(Rows(greedy: true))!);
        Assert.Equal(["reward (per update)", "reward (EMA 0.9)", "greedy baseline (EMA 0.9)"], greedy.Select(l => l.LegendText));
        Assert.Null(PlotWriter.RewardPlot([new PlotWriter.Row("ce", 1, new() { ["loss"] = 1 })]));
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
