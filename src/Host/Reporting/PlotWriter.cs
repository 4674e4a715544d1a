using System.Text.Json;

namespace Scst.Host.Reporting;

/// <summary>
/// Turns a run's metrics.jsonl into PNG plots (loss, SCST reward, validation CIDEr) with ScottPlot.
/// Reads the file rather than keeping state, so plots of a resumed run cover its whole history.
/// </summary>
public static class PlotWriter
{
    /// <summary>β of the reward plot's <see cref="Ema"/>: an effective window of 1/(1 − β) = 10 updates.</summary>
    public const double RewardSmoothing = 0.9;

    private static readonly (string File, string Title, Func<List<Row>, ScottPlot.Plot?> Draw)[] Plots =
    [
        ("loss.png", "Training loss", rows => Lines(rows, [("ce", "loss", "CE loss"), ("scst", "loss", "SCST loss")])),
        ("reward.png", "SCST reward (CIDEr-D of sampled captions)", RewardPlot),
        ("val_cider.png", "Validation CIDEr-D", rows => Lines(rows, [("val", "CIDEr", "val CIDEr-D")])),
    ];

    public static IReadOnlyList<string> Write(string metricsJsonl, string outDir)
    {
        var rows = Read(metricsJsonl);
        Directory.CreateDirectory(outDir);
        var written = new List<string>();
        foreach (var (file, title, draw) in Plots)
        {
            if (draw(rows) is not { } plot) continue;
            plot.Title(title);
            plot.XLabel("update");
            plot.ShowLegend();
            var path = Path.Combine(outDir, file);
            plot.SavePng(path, 900, 500);
            written.Add(path);
        }
        return written;
    }

    /// <summary>One line per series that has points; null when none has.</summary>
    private static ScottPlot.Plot? Lines(List<Row> rows, (string Phase, string Key, string Label)[] series)
    {
        var plot = new ScottPlot.Plot();
        var any = false;
        foreach (var (phase, key, label) in series)
        {
            var (xs, ys) = Series(rows, phase, key);
            if (xs.Length == 0) continue;
            var s = plot.Add.Scatter(xs, ys);
            s.LegendText = label;
            s.MarkerSize = xs.Length > 50 ? 0 : 4;
            any = true;
        }
        return any ? plot : null;
    }

    /// <summary>
    /// The per-update reward faint, its EMA solid; the baseline only when it is greedy. The mean and leave-one-out
    /// baselines are averages of the same rewards, so their mean equals reward_mean and a line of it says nothing.
    /// </summary>
    internal static ScottPlot.Plot? RewardPlot(List<Row> rows)
    {
        var (xs, reward) = Series(rows, "scst", "reward_mean");
        if (xs.Length == 0) return null;
        var plot = new ScottPlot.Plot();
        var color = plot.Add.Palette.GetColor(0);
        var raw = plot.Add.Scatter(xs, reward);
        raw.Color = color.WithAlpha(0.3);
        raw.LineWidth = 1;
        raw.MarkerSize = xs.Length > 50 ? 0 : 3;
        raw.LegendText = "reward (per update)";
        var smooth = plot.Add.Scatter(xs, Ema.Smooth(reward, RewardSmoothing));
        smooth.Color = color;
        smooth.LineWidth = 2;
        smooth.MarkerSize = 0;
        smooth.LegendText = $"reward (EMA {RewardSmoothing.ToString(System.Globalization.CultureInfo.InvariantCulture)})";
        var (gx, greedy) = Series(rows, "scst", "greedy_reward_mean");
        if (gx.Length > 0)
        {
            var baseline = plot.Add.Scatter(gx, Ema.Smooth(greedy, RewardSmoothing));
            baseline.Color = plot.Add.Palette.GetColor(1);
            baseline.LineWidth = 2;
            baseline.MarkerSize = 0;
            baseline.LegendText = $"greedy baseline (EMA {RewardSmoothing.ToString(System.Globalization.CultureInfo.InvariantCulture)})";
        }
        return plot;
    }

    private static (double[] X, double[] Y) Series(List<Row> rows, string phase, string key)
    {
        var pts = rows.Where(r => r.Phase == phase && r.Values.ContainsKey(key)).ToArray();
        return (pts.Select(r => (double)r.Step).ToArray(), pts.Select(r => r.Values[key]).ToArray());
    }

    internal sealed record Row(string Phase, long Step, Dictionary<string, double> Values);

    internal static List<Row> Read(string path)
    {
        var rows = new List<Row>();
        if (!File.Exists(path)) return rows;
        var lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{lineNo}: not a JSON object ({e.Message})"); }
            using (doc)
            {
                var root = doc.RootElement;
                var values = new Dictionary<string, double>();
                foreach (var p in root.EnumerateObject())
                    if (p.Value.ValueKind == JsonValueKind.Number && p.Name != "step") values[p.Name] = p.Value.GetDouble();
                rows.Add(new Row(root.GetProperty("phase").GetString() ?? "", root.GetProperty("step").GetInt64(), values));
            }
        }
        return rows;
    }
}
