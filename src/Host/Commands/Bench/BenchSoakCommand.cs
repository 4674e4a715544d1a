using System.CommandLine;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scst.Host.Cluster;
using Scst.Host.Configuration;
using Scst.Model;
using Scst.Training;
using Scst.Training.Configuration;
using Scst.Training.Telemetry;
using static TorchSharp.torch;

namespace Scst.Host.Commands.Bench;

/// <summary>
/// <c>bench soak --updates N</c>: a long <c>--role all</c> sync SCST run of the demo model (configs/demo_scst.yaml) in
/// this process, from its own short CE run (configs/demo_ce.yaml), all in a fresh work folder. Every
/// <c>--every</c> updates, on the learner's thread between two updates, it samples the process's RSS, the managed heap,
/// the live TorchSharp tensors and the open file handles; it reports their growth after warm-up (from update 1,000,
/// or the first third of shorter runs) to the end. A leak of native tensors shows as a rising tensor count, one of
/// native memory not held by tensors as RSS rising while the count stays flat.
/// </summary>
public static class BenchSoakCommand
{
    static readonly Option<int> Updates = new("--updates") { Description = "SCST updates of the soak run", DefaultValueFactory = _ => 3000 };
    static readonly Option<int> CeUpdates = new("--ce-updates") { Description = "Updates of the CE run the SCST run starts from", DefaultValueFactory = _ => 200 };
    static readonly Option<int> Every = new("--every") { Description = "Sample every N updates", DefaultValueFactory = _ => 100 };
    static readonly Option<DirectoryInfo?> Work = new("--work-dir") { Description = "Where the bench writes (default: a fresh temp folder)" };
    static readonly Option<DirectoryInfo?> Data = new("--data-dir") { Description = "Shapes dataset to use or generate (default: WORK/shapes)" };
    static readonly Option<FileInfo?> Json = new("--json") { Description = "Write {\"samples\": [{update, rss_mb, managed_mb, tensors, ...}], ...} to this file" };

    /// <summary>
    /// One sample, after a full collection with finalizers run (so garbage neither hides nor fakes a leak): resident and
    /// managed memory in MB, live tensors, open file descriptors; and the RSS as the run had it just before that collection.
    /// </summary>
    public sealed record Sample(long Update, double RssMb, double ManagedMb, double GcHeapMb, long Tensors, int Handles, double RssMbUncollected);

    public static Command Create()
    {
        var cmd = new Command("soak", "Long --role all SCST run of the demo model: RSS, managed heap, live tensors and handles every N updates, growth after warm-up")
            { Updates, CeUpdates, Every, Work, Data, Json };
        cmd.SetAction(async (p, ct) =>
        {
            var (n, ce, every) = (p.GetValue(Updates), p.GetValue(CeUpdates), p.GetValue(Every));
            if (n < 3 * every) { Console.Error.WriteLine($"bench soak: --updates must be at least 3 × --every ({3 * every})"); return 2; }
            if (ce < 1) { Console.Error.WriteLine("bench soak: --ce-updates must be at least 1"); return 2; }
            if (every < 1) { Console.Error.WriteLine("bench soak: --every must be at least 1"); return 2; }
            var work = p.GetValue(Work)?.FullName ?? Path.Combine(Path.GetTempPath(), "scst-bench-soak", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            var data = p.GetValue(Data)?.FullName ?? Path.Combine(work, "shapes");
            ScstConfig ceConfig, scstConfig;
            try { (ceConfig, scstConfig) = (ConfigLoader.Load(DemoCommand.FindConfig("demo_ce.yaml")), ConfigLoader.Load(DemoCommand.FindConfig("demo_scst.yaml"))); }
            catch (ConfigException e) { Console.Error.WriteLine(e.Message); return 2; }

            var ceDir = Path.Combine(work, "ce");
            ceConfig = WithData(ceConfig, data) with { Run = ceConfig.Run with { MaxIters = ce, EvalEvery = ce, CheckpointEvery = ce, OutputDir = ceDir } };
            if (TrainCommand.Run(ceConfig, new TrainerOptions(ceDir), "soak ce") is null) return 1;

            // Sync SCST (the mode whose weights are exact) from CE's best checkpoint; validation and checkpoints at the config's cadence, as a real run has them.
            var scstDir = Path.Combine(work, "scst");
            scstConfig = WithData(scstConfig, data) with
            {
                Model = scstConfig.Model with { LoadFinetuned = true, Finetuned = Path.Combine(ceDir, "checkpoints", "best.json") },
                Run = scstConfig.Run with { MaxIters = n, OutputDir = scstDir },
                Scst = scstConfig.Scst with { Mode = ScstMode.Sync },
            };
            var samples = new List<Sample>();
            using (var sampler = new UpdateSampler(every, samples))
                if (await ClusterTraining.RunAsync(scstConfig, new NodeOptions { Role = "all", RunDir = scstDir }, null, ct) != 0) return 1;
            if (samples.Count < 3) { Console.Error.WriteLine($"bench soak: only {samples.Count} samples were taken; the run stopped early (see {scstDir}/logs)"); return 1; }

            var result = Report(samples, n, every);
            result["work_dir"] = work;
            result["processor_count"] = Environment.ProcessorCount;
            var text = result.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
            Console.WriteLine(text);
            if (p.GetValue(Json) is { } json) await File.WriteAllTextAsync(json.FullName, text + "\n", ct);
            return 0;
        });
        return cmd;
    }

    static ScstConfig WithData(ScstConfig c, string dir) => c with { Datasets = c.Datasets.ToDictionary(kv => kv.Key, kv => kv.Value with { Images = dir }) };

    /// <summary>The update a run is warm from: 1,000, or the first third of runs shorter than 3,000 updates (rounded to a sample).</summary>
    public static long WarmUpUpdate(int updates, int every) => updates >= 3000 ? 1000 : Math.Max(every, updates / 3 / every * every);

    /// <summary>The samples and the growth of each figure from the warm-up sample to the last, in percent and per update.</summary>
    public static JsonObject Report(IReadOnlyList<Sample> samples, int updates, int every)
    {
        var warm = WarmUpUpdate(updates, every);
        var from = samples.FirstOrDefault(s => s.Update >= warm) ?? samples[samples.Count / 3];
        var last = samples[^1];
        var steady = samples.Where(s => s.Update >= from.Update).ToList();
        static double Pct(double a, double b) => Math.Round(100 * (b - a) / Math.Max(a, 1e-9), 2);
        var growth = new JsonObject
        {
            ["from_update"] = from.Update,
            ["to_update"] = last.Update,
            ["rss_mb_from"] = Math.Round(from.RssMb, 1),
            ["rss_mb_to"] = Math.Round(last.RssMb, 1),
            ["rss_pct"] = Pct(from.RssMb, last.RssMb),
            // Least squares over every sample after warm-up: one noisy end sample cannot fake or hide a creep.
            ["rss_kb_per_update"] = Math.Round(1024 * Slope(steady, s => s.RssMb), 2),
            ["rss_mb_max_after_warmup"] = Math.Round(steady.Max(s => s.RssMb), 1),
            ["rss_uncollected_kb_per_update"] = Math.Round(1024 * Slope(steady, s => s.RssMbUncollected), 2),
            ["managed_mb_from"] = Math.Round(from.ManagedMb, 1),
            ["managed_mb_to"] = Math.Round(last.ManagedMb, 1),
            ["gc_heap_kb_per_update"] = Math.Round(1024 * Slope(steady, s => s.GcHeapMb), 2),
            ["tensors_from"] = from.Tensors,
            ["tensors_to"] = last.Tensors,
            ["tensors_max_after_warmup"] = steady.Max(s => s.Tensors),
            ["tensors_pct"] = Pct(from.Tensors, last.Tensors),
            ["handles_from"] = from.Handles,
            ["handles_to"] = last.Handles,
        };
        var rows = new JsonArray();
        foreach (var s in samples)
            rows.Add(new JsonObject
            {
                ["update"] = s.Update, ["rss_mb"] = Math.Round(s.RssMb, 2), ["managed_mb"] = Math.Round(s.ManagedMb, 2),
                ["gc_heap_mb"] = Math.Round(s.GcHeapMb, 2), ["tensors"] = s.Tensors, ["handles"] = s.Handles,
                ["rss_mb_uncollected"] = Math.Round(s.RssMbUncollected, 2),
            });
        return new JsonObject { ["bench"] = "soak", ["updates"] = updates, ["every"] = every, ["growth_after_warmup"] = growth, ["samples"] = rows };
    }

    static double Slope(IReadOnlyList<Sample> xs, Func<Sample, double> y)
    {
        if (xs.Count < 2) return 0;
        var mx = xs.Average(s => (double)s.Update);
        var my = xs.Average(y);
        var sxx = xs.Sum(s => (s.Update - mx) * (s.Update - mx));
        return sxx == 0 ? 0 : xs.Sum(s => (s.Update - mx) * (y(s) - my)) / sxx;
    }

    /// <summary>
    /// The figures now. Tensor.TotalCount counts TorchSharp tensors whose native handle is not yet freed (disposed or
    /// finalized): after the collection and its finalizers, the tensors something still references.
    /// </summary>
    public static Sample Take(long update)
    {
        var before = ProcessMemory.RssBytes();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        int handles;
        try { handles = Directory.GetFileSystemEntries("/proc/self/fd").Length; }
        catch (IOException) { handles = -1; }
        catch (UnauthorizedAccessException) { handles = -1; }
        const double mb = 1024.0 * 1024;
        return new Sample(update, ProcessMemory.RssBytes() / mb, GC.GetTotalMemory(false) / mb, GC.GetGCMemoryInfo().HeapSizeBytes / mb, Tensor.TotalCount, handles, before / mb);
    }

    /// <summary>
    /// Samples on the learner's thread right after every <c>every</c>-th SCST update it records (the "scst.updates"
    /// counter of <see cref="ScstMetrics"/>), so a sample never lands inside an update.
    /// </summary>
    sealed class UpdateSampler : IDisposable
    {
        readonly MeterListener _listener = new();
        long _updates;

        public UpdateSampler(int every, List<Sample> samples)
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == ScstMetrics.MeterName && instrument.Name == ScstMetrics.Updates.Name) l.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var t in tags)
                    if (t.Key == "mode" && t.Value is string mode && !mode.StartsWith("scst", StringComparison.Ordinal)) return;
                var u = Interlocked.Add(ref _updates, value);
                if (u % every == 0) lock (samples) samples.Add(Take(u));
            });
            _listener.Start();
            lock (samples) samples.Add(Take(0));
        }

        public void Dispose() => _listener.Dispose();
    }
}
