using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scst.Training.Configuration;
using Scst.Training;
using Scst.Host.Cluster;
using Scst.Host.Configuration;

namespace Scst.Host.Commands.Bench;

/// <summary>
/// <c>bench actors --config FILE</c>: SCST throughput of the plain trainer, <c>--role all</c> sync (the actor
/// overhead: weight export/fetch, journal write, messaging), sync with each micro-batch split over two rollout actors
/// (<c>scst.rollout_splits: 2</c>), and async with two rollout actors (plus its staleness
/// distribution), each on the same config in a fresh run folder. Throughput is measured between the first and last
/// update's metrics lines, so start-up and the final evaluation are not counted.
/// </summary>
public static class BenchActorsCommand
{
    static readonly Option<int> Updates = new("--updates") { Description = "Updates per run (overrides run.max_iters)", DefaultValueFactory = _ => 30 };
    static readonly Option<DirectoryInfo?> Work = new("--work-dir") { Description = "Where the bench runs write (default: a temp folder)" };
    static readonly Option<int> AsyncStaleness = new("--max-staleness") { Description = "max_staleness of the async run", DefaultValueFactory = _ => 2 };

    public static Command Create()
    {
        var cmd = new Command("actors", "SCST samples/s: plain trainer vs --role all sync, sync split over 2 rollout actors, async with 2 rollout actors") { Updates, Work, AsyncStaleness };
        cmd.SetAction(async (p, ct) =>
        {
            var configFile = p.GetValue(GlobalOptions.Config);
            if (configFile is null) { Console.Error.WriteLine("bench actors: --config FILE (an SCST config) is required"); return 2; }
            ScstConfig config;
            try { config = ConfigLoader.Load(configFile.FullName); }
            catch (ConfigException e) { Console.Error.WriteLine(e.Message); return 2; }
            if (!config.IsScst) { Console.Error.WriteLine("bench actors: the config has no scst section"); return 2; }
            var n = p.GetValue(Updates);
            var work = p.GetValue(Work)?.FullName ?? Path.Combine(Path.GetTempPath(), "scst-bench-actors", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            // No validation inside the timed span: evaluate only at the end.
            var baseRun = config.Run with { Runner = null, MaxIters = n, ItersPerInnerEpoch = null, EvalEvery = n, CheckpointEvery = n };
            var sync = config with { Run = baseRun, Scst = config.Scst with { Mode = ScstMode.Sync } };
            var async = config with { Run = baseRun, Scst = config.Scst with { Mode = ScstMode.Async, MaxStaleness = p.GetValue(AsyncStaleness) } };

            var result = new JsonObject { ["bench"] = "actors", ["updates"] = n, ["images_per_update"] = baseRun.BatchSizeTrain * baseRun.AccumGradIters, ["work_dir"] = work };
            var plainDir = Path.Combine(work, "plain");
            if (TrainCommand.Run(sync, new TrainerOptions(plainDir), "bench plain") is null) return 1;
            result["plain"] = Throughput(plainDir);

            var syncDir = Path.Combine(work, "all-sync");
            if (await ClusterTraining.RunAsync(sync, new NodeOptions { Role = "all", RunDir = syncDir }, null, ct) != 0) return 1;
            result["all_sync"] = Throughput(syncDir);

            var hocon = Path.Combine(work, "two-rollouts.conf");
            await File.WriteAllTextAsync(hocon, "scst.rollout.actors = 2\n", ct);
            // Sync with each micro-batch split over the 2 rollout actors (scst.rollout_splits).
            var split = sync with { Scst = sync.Scst with { RolloutSplits = 2 } };
            var splitDir = Path.Combine(work, "all-sync-split-2");
            if (await ClusterTraining.RunAsync(split, new NodeOptions { Role = "all", RunDir = splitDir, ExtraHoconFiles = [hocon] }, null, ct) != 0) return 1;
            result["all_sync_split_2_rollouts"] = Throughput(splitDir);

            var asyncDir = Path.Combine(work, "all-async-2");
            if (await ClusterTraining.RunAsync(async, new NodeOptions { Role = "all", RunDir = asyncDir, ExtraHoconFiles = [hocon] }, null, ct) != 0) return 1;
            var asyncFigures = Throughput(asyncDir);
            using (var summary = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(asyncDir, "summary.json"), ct)))
            {
                asyncFigures["staleness_histogram"] = JsonNode.Parse(summary.RootElement.GetProperty("staleness_histogram").GetRawText());
                asyncFigures["rollouts_dropped_stale"] = summary.RootElement.GetProperty("rollouts_dropped_stale").GetInt64();
            }
            result["all_async_2_rollouts"] = asyncFigures;

            double Rate(string k) => result[k]!["samples_per_s"]!.GetValue<double>();
            result["sync_overhead_pct"] = Math.Round(100 * (Rate("plain") / Rate("all_sync") - 1), 2);
            result["sync_split_speedup_vs_sync"] = Math.Round(Rate("all_sync_split_2_rollouts") / Rate("all_sync"), 3);
            result["async_speedup_vs_sync"] = Math.Round(Rate("all_async_2_rollouts") / Rate("all_sync"), 3);
            Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        });
        return cmd;
    }

    /// <summary>Samples/s between the first and the last SCST update line of metrics.jsonl.</summary>
    static JsonObject Throughput(string runDir)
    {
        var lines = File.ReadLines(Path.Combine(runDir, "metrics.jsonl")).Where(l => l.Contains("\"phase\":\"scst\""))
            .Select(l => JsonDocument.Parse(l).RootElement).ToList();
        if (lines.Count < 2) throw new InvalidDataException($"{runDir}/metrics.jsonl has {lines.Count} update lines; bench needs at least 2 (--updates)");
        var t0 = DateTimeOffset.Parse(lines[0].GetProperty("time").GetString()!, CultureInfo.InvariantCulture);
        var t1 = DateTimeOffset.Parse(lines[^1].GetProperty("time").GetString()!, CultureInfo.InvariantCulture);
        using var summary = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(runDir, "summary.json")));
        var updates = lines.Count - 1;
        var perUpdate = summary.RootElement.GetProperty("samples_consumed").GetInt64() / (double)summary.RootElement.GetProperty("updates").GetInt64();
        var seconds = (t1 - t0).TotalSeconds;
        return new JsonObject
        {
            ["s_per_update"] = Math.Round(seconds / updates, 4),
            ["samples_per_s"] = Math.Round(updates * perUpdate / seconds, 2),
            ["reward_mean_last"] = Math.Round(lines[^1].GetProperty("reward_mean").GetDouble(), 4),
        };
    }
}
