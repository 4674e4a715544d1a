using System.Text.Json;

namespace Scst.Host.Reporting;

/// <summary>
/// Turns a run's metrics.jsonl into PNG plots (loss, reward and baseline, validation CIDEr) with ScottPlot.
/// Reads the file rather than keeping state, so plots of a resumed run cover its whole history.
/// </summary>
public static class PlotWriter
{
    private static readonly (string File, string Title, (string Phase, string Key, string Label)[] Series)[] Plots =
    [
        ("loss.png", "Training loss", [("ce", "loss", "CE loss"), ("scst", "loss", "SCST loss")]),
        ("reward.png", "SCST reward (CIDEr-D of sampled captions)", [("scst", "reward_mean", "reward"), ("scst", "baseline_mean", "baseline")]),
        ("val_cider.png", "Validation CIDEr-D", [("val", "CIDEr", "val CIDEr-D")]),
    ];

    public static IReadOnlyList<string> Write(string metricsJsonl, string outDir)
    {
        var rows = Read(metricsJsonl);
        Directory.CreateDirectory(outDir);
        var written = new List<string>();
        foreach (var (file, title, series) in Plots)
        {
            var plot = new ScottPlot.Plot();
            var any = false;
            foreach (var (phase, key, label) in series)
            {
                var pts = rows.Where(r => r.Phase == phase && r.Values.ContainsKey(key)).Select(r => (x: (double)r.Step, y: r.Values[key])).ToArray();
                if (pts.Length == 0) continue;
                var s = plot.Add.Scatter(pts.Select(p => p.x).ToArray(), pts.Select(p => p.y).ToArray());
                s.LegendText = label;
                s.MarkerSize = pts.Length > 50 ? 0 : 4;
                any = true;
            }
            if (!any) continue;
            plot.Title(title);
            plot.XLabel("update");
            plot.ShowLegend();
            var path = Path.Combine(outDir, file);
            plot.SavePng(path, 900, 500);
            written.Add(path);
        }
        return written;
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
