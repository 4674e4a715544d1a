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
/// overhead: weight export/fetch, journal write, messaging), sync with the learner in this process and 1, 2, ...
/// <c>--rollout-processes</c> rollout worker processes on 127.0.0.1 (each update spread over all of them), and async
/// with two rollout actors (plus its staleness distribution), each on the same config in a fresh run folder.
/// Throughput is measured between update lines of metrics.jsonl (from the first update that used every rollout process,
/// to the last), so start-up, joining and the final evaluation are not counted. Next to it, the per-update critical
/// path the learner logs: the slowest rollout part, the learner's step, the journal write.
/// </summary>
public static class BenchActorsCommand
{
    static readonly Option<int> Updates = new("--updates") { Description = "Updates per run (overrides run.max_iters)", DefaultValueFactory = _ => 30 };
    static readonly Option<DirectoryInfo?> Work = new("--work-dir") { Description = "Where the bench runs write (default: a temp folder)" };
    static readonly Option<int> AsyncStaleness = new("--max-staleness") { Description = "max_staleness of the async run", DefaultValueFactory = _ => 2 };
    static readonly Option<int> Processes = new("--rollout-processes") { Description = "Sync runs with 1..N rollout worker processes", DefaultValueFactory = _ => 3 };
    static readonly Option<FileInfo?> Json = new("--json") { Description = "Also write the result to this file" };

    public static Command Create()
    {
        var cmd = new Command("actors", "SCST images/s: plain trainer, --role all sync, sync over 1..N rollout worker processes, async with 2 rollout actors")
            { Updates, Work, AsyncStaleness, Processes, Json };
        cmd.SetAction(async (p, ct) =>
        {
            var configFile = p.GetValue(GlobalOptions.Config);
            if (configFile is null) { Console.Error.WriteLine("bench actors: --config FILE (an SCST config) is required"); return 2; }
            ScstConfig config;
            try { config = ConfigLoader.Load(configFile.FullName); }
            catch (ConfigException e) { Console.Error.WriteLine(e.Message); return 2; }
            if (!config.IsScst) { Console.Error.WriteLine("bench actors: the config has no scst section"); return 2; }
            var n = p.GetValue(Updates);
            var processes = p.GetValue(Processes);
            if (n < 3) { Console.Error.WriteLine("bench actors: --updates must be at least 3"); return 2; }
            if (processes < 1) { Console.Error.WriteLine("bench actors: --rollout-processes must be at least 1"); return 2; }
            var work = p.GetValue(Work)?.FullName ?? Path.Combine(Path.GetTempPath(), "scst-bench-actors", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            // No validation inside the timed span: evaluate only at the end.
            var baseRun = config.Run with { Runner = null, MaxIters = n, ItersPerInnerEpoch = null, EvalEvery = n, CheckpointEvery = n };
            var sync = config with { Run = baseRun, Scst = config.Scst with { Mode = ScstMode.Sync } };
            var async = config with { Run = baseRun, Scst = config.Scst with { Mode = ScstMode.Async, MaxStaleness = p.GetValue(AsyncStaleness) } };

            var result = new JsonObject { ["bench"] = "actors", ["updates"] = n, ["images_per_update"] = baseRun.BatchSizeTrain * baseRun.AccumGradIters,
                ["processor_count"] = Environment.ProcessorCount, ["work_dir"] = work };
            var plainDir = Path.Combine(work, "plain");
            TrainCommand.Run(sync, new TrainerOptions(plainDir), "bench plain");
            result["plain"] = Figures(plainDir, 1);

            var syncDir = Path.Combine(work, "all-sync");
            if (await ClusterTraining.RunAsync(sync, new NodeOptions { Role = "all", RunDir = syncDir }, null, ct) != 0) return 1;
            result["all_sync"] = Figures(syncDir, 1);

            // The rollout nodes read the config file as given; the bench's overrides (updates, evaluation) concern the learner only.
            var byProcesses = new JsonObject();
            for (var k = 1; k <= processes; k++)
            {
                var dir = Path.Combine(work, $"sync-{k}-rollout-processes");
                if (await RunWithRolloutProcesses(sync, configFile.FullName, k, dir, ct) is not { } figures) return 1;
                byProcesses[k.ToString(CultureInfo.InvariantCulture)] = figures;
            }
            result["sync_rollout_processes"] = byProcesses;

            var hocon = Path.Combine(work, "two-rollouts.conf");
            await File.WriteAllTextAsync(hocon, "scst.rollout.actors = 2\n", ct);
            var asyncDir = Path.Combine(work, "all-async-2");
            if (await ClusterTraining.RunAsync(async, new NodeOptions { Role = "all", RunDir = asyncDir, ExtraHoconFiles = [hocon] }, null, ct) != 0) return 1;
            var asyncFigures = Figures(asyncDir, 1);
            using (var summary = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(asyncDir, "summary.json"), ct)))
            {
                asyncFigures["staleness_histogram"] = JsonNode.Parse(summary.RootElement.GetProperty("staleness_histogram").GetRawText());
                asyncFigures["rollouts_dropped_stale"] = summary.RootElement.GetProperty("rollouts_dropped_stale").GetInt64();
            }
            result["all_async_2_rollouts"] = asyncFigures;

            static double Rate(JsonNode? figures) => figures!["samples_per_s"]!.GetValue<double>();
            result["sync_overhead_pct"] = Math.Round(100 * (Rate(result["plain"]) / Rate(result["all_sync"]) - 1), 2);
            var speedup = new JsonObject();
            foreach (var (k, figures) in byProcesses) speedup[k] = Math.Round(Rate(figures) / Rate(byProcesses["1"]), 3);
            result["sync_speedup_vs_1_rollout_process"] = speedup;
            result["async_speedup_vs_sync"] = Math.Round(Rate(result["all_async_2_rollouts"]) / Rate(result["all_sync"]), 3);
            var text = result.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
            Console.WriteLine(text);
            if (p.GetValue(Json) is { } json) await File.WriteAllTextAsync(json.FullName, text + "\n", ct);
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// A sync run with the learner (and its reward pool) in this process and <paramref name="k"/> rollout worker
    /// processes; its figures, or null if the learner failed. Every rollout node must have served rollouts.
    /// </summary>
    static async Task<JsonObject?> RunWithRolloutProcesses(ScstConfig sync, string configFile, int k, string dir, CancellationToken ct)
    {
        var port = RolloutWorkerProcess.FreePort();
        var learnerAddress = RolloutWorkerProcess.LearnerAddress(port);
        var nodes = new List<RolloutWorkerProcess>();
        try
        {
            var learner = new NodeOptions { Role = "learner", Port = port, RunDir = Path.Combine(dir, "learner") };
            for (var i = 1; i <= k; i++) nodes.Add(RolloutWorkerProcess.Start(learnerAddress, configFile, Path.Combine(dir, $"rollout-{i}"), learner));
            var learnerDir = learner.RunDir;
            if (await ClusterTraining.RunAsync(sync, learner, null, ct, configFile) != 0) return null;
            foreach (var node in nodes)
                if (!await node.WaitForExit(TimeSpan.FromSeconds(60)))
                    Console.Error.WriteLine($"bench actors: a rollout node did not exit cleanly after the run (log: {node.LogFile})");
            var figures = Figures(learnerDir, k);
            using var summary = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(learnerDir, "summary.json"), ct));
            figures["rollouts_by_node"] = JsonNode.Parse(summary.RootElement.GetProperty("rollouts_by_node").GetRawText());
            return figures;
        }
        finally
        {
            foreach (var node in nodes) node.Dispose();
        }
    }

    /// <summary>
    /// Samples/s from the first SCST update line that used <paramref name="workers"/> rollout workers (the plain
    /// trainer's lines: the first) to the last, and the means of the learner's critical-path figures over those updates.
    /// </summary>
    static JsonObject Figures(string runDir, int workers)
    {
        var lines = File.ReadLines(Path.Combine(runDir, "metrics.jsonl")).Where(l => l.Contains("\"phase\":\"scst\""))
            .Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var from = lines.FindIndex(l => !l.TryGetProperty("rollout_workers", out var w) || w.GetDouble() >= workers);
        if (from < 0) throw new InvalidDataException($"{runDir}/metrics.jsonl: no update used {workers} rollout workers");
        var timed = lines[from..];
        if (timed.Count < 2) throw new InvalidDataException($"{runDir}/metrics.jsonl has {timed.Count} update lines from the first with {workers} rollout workers; bench needs at least 2 (--updates)");
        static DateTimeOffset Time(JsonElement l) => DateTimeOffset.Parse(l.GetProperty("time").GetString()!, CultureInfo.InvariantCulture);
        using var summary = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(runDir, "summary.json")));
        var updates = timed.Count - 1;
        var perUpdate = summary.RootElement.GetProperty("samples_consumed").GetInt64() / (double)summary.RootElement.GetProperty("updates").GetInt64();
        var seconds = (Time(timed[^1]) - Time(timed[0])).TotalSeconds;
        var figures = new JsonObject
        {
            ["timed_from_update"] = timed[0].GetProperty("step").GetInt64(),
            ["s_per_update"] = Math.Round(seconds / updates, 4),
            ["samples_per_s"] = Math.Round(updates * perUpdate / seconds, 2),
            ["reward_mean_last"] = Math.Round(timed[^1].GetProperty("reward_mean").GetDouble(), 4),
        };
        // The critical path per update (actor runs): the learner's step, sharing/publishing its weights, the slowest part's
        // wait for them at its worker (fetch + load), its generation and scoring, the whole rollout round trip, the journal write
        // (which overlaps the next update's rollouts in sync mode), and the interval between updates.
        foreach (var key in new[] { "learner_step_s", "publish_s", "weights_wait_max_s", "generate_max_s", "reward_max_s", "rollout_latency_max_s",
                     "rollout_latency_s", "persist_lag_s", "update_interval_s", "rollout_workers" })
            if (timed.Skip(1).All(l => l.TryGetProperty(key, out _)))
                figures[$"{key}_mean"] = Math.Round(timed.Skip(1).Average(l => l.GetProperty(key).GetDouble()), 4);
        return figures;
    }
}
