using System.Text.Json;
using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

/// <summary>
/// Several runs on one cluster: each run a learner entity (entity id = run id) with its own journal stream, checkpoints,
/// metrics and summary; `--role submit` sends a second run into a running cluster; `status` lists them; a learner node
/// that dies hands its runs to another learner node (PostgreSQL), which resumes them from journal and checkpoint.
/// </summary>
[Trait("Category", "Chaos")]
public class RunsChaosTests(ITestOutputHelper output)
{
    static readonly TimeSpan Run = TimeSpan.FromSeconds(240);
    const double Tolerance = 1e-6;

    static string Addr(int port) => $"akka.tcp://scst@127.0.0.1:{port}";

    static int ScstLines(string run) => File.ReadLines(Path.Combine(run, "metrics.jsonl")).Count(l => l.Contains("\"phase\":\"scst\""));

    [Fact]
    public async Task Two_runs_on_one_learner_node_sync_exact_async_alongside_each_with_its_own_journal_and_summary()
    {
        var dir = TinyScstRun.NewDir("two-runs");
        var syncConfig = TinyScstRun.WriteConfig(Directory.CreateDirectory(Path.Combine(dir, "cfg-sync")).FullName, maxIters: 24, checkpointEvery: 8, evalEvery: 24);
        // The async run outlasts the sync one: `status` sees both, and the learner node stays until the async run ends.
        var asyncConfig = TinyScstRun.WriteConfig(Directory.CreateDirectory(Path.Combine(dir, "cfg-async")).FullName, maxIters: 64, checkpointEvery: 16,
            evalEvery: 64, mode: "async", maxStaleness: 2);
        var hocon = Path.Combine(dir, "test.conf");
        File.WriteAllText(hocon, "scst.learner.request-timeout = 15s\n");
        var plain = Path.Combine(dir, "plain");
        await TinyScstRun.PlainRun(syncConfig, plain);

        var (syncRun, asyncRun) = (Path.Combine(dir, "sync-run"), Path.Combine(dir, "async-run"));
        int lp = HostProcess.FreePort(), p1 = HostProcess.FreePort(), p2 = HostProcess.FreePort(), pr = HostProcess.FreePort();
        var seed = Addr(lp);
        string[] Worker(string role, string config, string runId, string name, int port) =>
            ["--role", role, "train", "--config", config, "--run-id", runId, "--run-dir", Path.Combine(dir, name), "--port", $"{port}",
             "--seed-nodes", seed, "--hocon", hocon, "--fast-failure"];
        using var learner = HostProcess.Start("learner", "--role", "learner", "train", "--config", syncConfig, "--run-dir", syncRun, "--port", $"{lp}",
            "--hocon", hocon, "--fast-failure");
        await learner.WaitForLine(l => l.Contains($"member up: {seed}"), Run, "its own member-up");
        using var submit = HostProcess.Start("submit", "--role", "submit", "train", "--config", asyncConfig, "--run-dir", asyncRun, "--seed-nodes", seed,
            "--hocon", hocon, "--fast-failure");
        using var r1 = HostProcess.Start("rollout-sync", Worker("rollout", syncConfig, "sync-run", "r1", p1));
        using var r2 = HostProcess.Start("rollout-async", Worker("rollout", asyncConfig, "async-run", "r2", p2));
        // One reward node for both runs: it loads each run's references from the config its learner journaled.
        using var reward = HostProcess.Start("reward", "node", "--role", "reward", "--run-dir", Path.Combine(dir, "rw"), "--port", $"{pr}", "--seed-nodes", seed,
            "--hocon", hocon, "--fast-failure");

        // Both running at once, on the one learner node: `status` lists both.
        await TinyScstRun.WaitUntil(() => TinyScstRun.LastUpdate(syncRun) >= 1 && TinyScstRun.LastUpdate(asyncRun) >= 1, Run, "both runs updating", learner, submit, r1, r2);
        using (var status = HostProcess.Start("status", "status", "--seed-nodes", seed, "--timeout", "60"))
        {
            await status.ExpectExit(0, Run, "list the runs");
            foreach (var l in status.Lines) output.WriteLine(l);
            Assert.Contains("runs: 2", status.Lines);
            Assert.Contains(status.Lines, l => l.StartsWith($"run sync-run: learner {seed} running", StringComparison.Ordinal) && l.Contains("mode sync"));
            Assert.Contains(status.Lines, l => l.StartsWith($"run async-run: learner {seed} running", StringComparison.Ordinal) && l.Contains("mode async"));
        }

        await submit.ExpectExit(0, Run, "the async run finishing");
        await learner.ExpectExit(0, Run, "the sync run finishing (and the node leaving once it hosts no run)");
        foreach (var w in new[] { r1, r2 }) await w.ExpectExit(0, TimeSpan.FromSeconds(30), "exit after its run");
        Assert.Contains(submit.Lines, l => l.Contains("run async-run: async on learner " + seed));
        foreach (var run in new[] { "sync-run", "async-run" })
        {
            Assert.Contains(learner.Lines, l => l.Contains($"learner: run {run}: reward worker") && l.Contains($"127.0.0.1:{pr}"));
            // Loaded once per run, released when it ended.
            Assert.Single(reward.Lines, l => l.Contains($"reward: run {run}: references of 200 images and their document frequencies loaded"));
            Assert.Contains(reward.Lines, l => l.Contains($"reward: run {run} ended; its references are released"));
        }
        Assert.True(reward.Terminate(TimeSpan.FromSeconds(30)), "the reward node did not stop on SIGTERM");
        Assert.Equal(0, reward.ExitCode);

        var delta = TinyScstRun.MaxWeightDelta(plain, syncRun);
        output.WriteLine($"max |Δ| plain vs the sync run sharing its learner node with an async run: {delta:G3}");
        Assert.True(delta <= Tolerance, $"weights differ by {delta}");
        var (s, a) = (TinyScstRun.Summary(syncRun), TinyScstRun.Summary(asyncRun));
        Assert.Equal(24, s.GetProperty("updates").GetInt64());
        Assert.Equal(64, a.GetProperty("updates").GetInt64());
        Assert.True(s.GetProperty("completed").GetBoolean() && a.GetProperty("completed").GetBoolean());
        Assert.Equal(24, ScstLines(syncRun));
        Assert.Equal(64, ScstLines(asyncRun));
        Assert.Contains(learner.Lines, l => l.Contains("this learner node still hosts run(s) async-run"));
        // Each run's rollouts came from its own rollout node; its scores from the shared reward node (the learner's own pool only until it registered).
        Assert.True(s.GetProperty("nodes_seen").GetInt32() >= 3 && a.GetProperty("nodes_seen").GetInt32() >= 3);
        Assert.True(s.GetProperty("rollouts_by_node").TryGetProperty(Addr(p1), out _) && !s.GetProperty("rollouts_by_node").TryGetProperty(Addr(p2), out _));
        Assert.True(a.GetProperty("rollouts_by_node").TryGetProperty(Addr(p2), out _) && !a.GetProperty("rollouts_by_node").TryGetProperty(Addr(p1), out _));
        // One journal file (the learner node's), one stream per run.
        Assert.Equal(["scst-learner-async-run", "scst-learner-sync-run"], JournalStreams(Path.Combine(syncRun, "journal.db")));
    }

    /// <summary>Persistence ids of the learner streams in a SQLite journal.</summary>
    static string[] JournalStreams(string file)
    {
        using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={file};Mode=ReadOnly");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT DISTINCT persistence_id FROM journal WHERE persistence_id LIKE 'scst-learner%' ORDER BY persistence_id";
        using var r = cmd.ExecuteReader();
        var ids = new List<string>();
        while (r.Read()) ids.Add(r.GetString(0));
        return [.. ids];
    }

    [SkippableFact]
    public async Task Learner_node_killed_with_two_runs_both_resume_on_a_second_learner_node_sync_still_exact()
    {
        var (pg, drop) = ScstActorChaosTests.PostgresHocon();
        try
        {
            var dir = TinyScstRun.NewDir("failover");
            var syncConfig = TinyScstRun.WriteConfig(Directory.CreateDirectory(Path.Combine(dir, "cfg-sync")).FullName, maxIters: 48, checkpointEvery: 5, evalEvery: 48);
            var asyncConfig = TinyScstRun.WriteConfig(Directory.CreateDirectory(Path.Combine(dir, "cfg-async")).FullName, maxIters: 32, checkpointEvery: 5,
                evalEvery: 32, mode: "async", maxStaleness: 2);
            var hocon = Path.Combine(dir, "test.conf");
            File.WriteAllText(hocon, "scst.learner.request-timeout = 15s\n" + pg);
            var plain = Path.Combine(dir, "plain");
            await TinyScstRun.PlainRun(syncConfig, plain);

            var (syncRun, asyncRun) = (Path.Combine(dir, "sync-run"), Path.Combine(dir, "async-run"));
            // With PostgreSQL keep-majority counts every node: learner B, the workers and the submitter outvote dead learner A.
            int pa = HostProcess.FreePort(), pb = HostProcess.FreePort(), p1 = HostProcess.FreePort(), p2 = HostProcess.FreePort(), pr = HostProcess.FreePort();
            var seed = Addr(pa);
            string[] Worker(string role, string config, string runId, string name, int port) =>
                ["--role", role, "train", "--config", config, "--run-id", runId, "--run-dir", Path.Combine(dir, name), "--port", $"{port}",
                 "--seed-nodes", seed, "--hocon", hocon, "--fast-failure"];
            using var a = HostProcess.Start("learner-a", "--role", "learner", "train", "--config", syncConfig, "--run-dir", syncRun, "--port", $"{pa}",
                "--hocon", hocon, "--fast-failure");
            await a.WaitForLine(l => l.Contains($"member up: {seed}"), Run, "its own member-up");
            using var submit = HostProcess.Start("submit", "--role", "submit", "train", "--config", asyncConfig, "--run-dir", asyncRun, "--seed-nodes", seed,
                "--hocon", hocon, "--fast-failure");
            using var r1 = HostProcess.Start("rollout-sync", Worker("rollout", syncConfig, "sync-run", "r1", p1));
            using var r2 = HostProcess.Start("rollout-async", Worker("rollout", asyncConfig, "async-run", "r2", p2));
            using var reward = HostProcess.Start("reward", Worker("reward", syncConfig, "sync-run", "rw", pr));
            await TinyScstRun.WaitUntil(() => TinyScstRun.LastUpdate(syncRun) >= 1 && TinyScstRun.LastUpdate(asyncRun) >= 1, Run, "both runs updating on A", a, submit, r1, r2);

            using var b = HostProcess.Start("learner-b", "node", "--role", "learner", "--port", $"{pb}", "--seed-nodes", seed, "--run-dir", Path.Combine(dir, "b"),
                "--hocon", hocon, "--fast-failure");
            await a.WaitForLine(l => l.Contains($"member up: {Addr(pb)}"), Run, "learner B up");
            await TinyScstRun.WaitUntil(() => TinyScstRun.LastUpdate(syncRun) >= 7 && TinyScstRun.LastUpdate(asyncRun) >= 5, Run, "updates 7 / 5", a, submit);
            a.Kill9();
            var killed = System.Diagnostics.Stopwatch.StartNew();
            var (killedSync, killedAsync) = (TinyScstRun.LastUpdate(syncRun), TinyScstRun.LastUpdate(asyncRun));
            output.WriteLine($"SIGKILL learner A with sync at update {killedSync}, async at {killedAsync}");
            Assert.True(killedSync < 48 && killedAsync < 32, "a run finished before the kill");
            await b.WaitForLine(l => l.Contains("learner: run sync-run: sync SCST at update"), Run, "the sync run restarted on B");
            var restarted = killed.Elapsed;
            await TinyScstRun.WaitUntil(() => TinyScstRun.LastUpdate(syncRun) > killedSync, Run, "a new sync update on B", b, r1);
            output.WriteLine($"SIGKILL -> sync run restarted on learner B {restarted.TotalSeconds:F1} s (downing, coordinator hand-over, recovery, checkpoint, replay), " +
                             $"-> its next update {killed.Elapsed.TotalSeconds:F1} s");

            await submit.ExpectExit(0, Run, "the async run finishing on learner B");
            await TinyScstRun.WaitUntil(() => File.Exists(Path.Combine(syncRun, "summary.json")) && TinyScstRun.Summary(syncRun).GetProperty("completed").GetBoolean(),
                Run, "the sync run finishing on learner B", b, r1);
            foreach (var w in new[] { r1, r2, reward }) await w.ExpectExit(0, TimeSpan.FromSeconds(30), "exit after its run");
            foreach (var run in new[] { "sync-run", "async-run" })
                Assert.Contains(b.Lines, l => l.Contains($"learner: run {run}:") && l.Contains("SCST at update"));
            Assert.Contains(b.Lines, l => l.Contains("learner: journal at update"));
            Assert.Contains(submit.Lines, l => l.Contains("run async-run: async on learner " + Addr(pb)));

            var delta = TinyScstRun.MaxWeightDelta(plain, syncRun);
            output.WriteLine($"max |Δ| plain vs the sync run moved to learner B after a SIGKILL: {delta:G3}");
            Assert.True(delta <= Tolerance, $"weights differ by {delta}");
            Assert.Equal(48, TinyScstRun.Summary(syncRun).GetProperty("updates").GetInt64());
            var asyncSummary = TinyScstRun.Summary(asyncRun);
            Assert.Equal(32, asyncSummary.GetProperty("updates").GetInt64());
            Assert.True(asyncSummary.GetProperty("completed").GetBoolean());
            Assert.True(b.Terminate(TimeSpan.FromSeconds(30)), "learner B did not stop on SIGTERM");
            Assert.Equal(0, b.ExitCode);
        }
        finally { drop(); }
    }
}
