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
        // The async run outlasts the sync one: `status` sees both, and the learner node stays until the async run ends.
        using var c = await TwoRuns.Start("two-runs", syncUpdates: 24, asyncUpdates: 64, checkpointEvery: 8, extraHocon: "");
        var (learner, submit, r1, r2, dir, seed) = (c.Learner, c.Submit, c.R1, c.R2, c.Dir, c.Seed);
        var (syncRun, asyncRun, p1, p2, pr) = (c.SyncRun, c.AsyncRun, c.P1, c.P2, HostProcess.FreePort());
        // One reward node for both runs: it loads each run's references from the config its learner journaled.
        using var reward = HostProcess.Start("reward", "node", "--role", "reward", "--run-dir", Path.Combine(dir, "rw"), "--port", $"{pr}", "--seed-nodes", seed,
            "--hocon", c.Hocon, "--fast-failure");

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

        var delta = TinyScstRun.MaxWeightDelta(c.Plain, syncRun);
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
            // With PostgreSQL keep-majority counts every node: learner B, the workers and the submitter outvote dead learner A.
            using var c = await TwoRuns.Start("failover", syncUpdates: 48, asyncUpdates: 32, checkpointEvery: 5, extraHocon: pg);
            var (a, submit, r1, r2, dir, seed) = (c.Learner, c.Submit, c.R1, c.R2, c.Dir, c.Seed);
            var (syncRun, asyncRun, pb) = (c.SyncRun, c.AsyncRun, HostProcess.FreePort());
            using var reward = HostProcess.Start("reward", c.Worker("reward", c.SyncConfig, "sync-run", "rw", HostProcess.FreePort()));
            await TinyScstRun.WaitUntil(() => TinyScstRun.LastUpdate(syncRun) >= 1 && TinyScstRun.LastUpdate(asyncRun) >= 1, Run, "both runs updating on A", a, submit, r1, r2);

            using var b = HostProcess.Start("learner-b", "node", "--role", "learner", "--port", $"{pb}", "--seed-nodes", seed, "--run-dir", Path.Combine(dir, "b"),
                "--hocon", c.Hocon, "--fast-failure");
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

            var delta = TinyScstRun.MaxWeightDelta(c.Plain, syncRun);
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

    [Fact]
    public async Task A_rollout_node_shared_by_two_runs_holds_the_frozen_base_once_and_the_sync_run_stays_exact()
    {
        using var c = await TwoRuns.Start("shared-rollout", syncUpdates: 16, asyncUpdates: 24, checkpointEvery: 8, extraHocon: "", rolloutPerRun: false);
        var pr = HostProcess.FreePort();
        // One rollout node for both runs: one model (frozen base) on its device, a trainable overlay per run.
        using var rollout = HostProcess.Start("rollout-shared", "node", "--role", "rollout", "--config", c.SyncConfig, "--run-dir", Path.Combine(c.Dir, "rs"),
            "--port", $"{c.P1}", "--seed-nodes", c.Seed, "--hocon", c.Hocon, "--fast-failure");
        using var reward = HostProcess.Start("reward", "node", "--role", "reward", "--run-dir", Path.Combine(c.Dir, "rw"), "--port", $"{pr}", "--seed-nodes", c.Seed,
            "--hocon", c.Hocon, "--fast-failure");
        await c.Submit.ExpectExit(0, Run, "the async run finishing");
        await c.Learner.ExpectExit(0, Run, "the sync run finishing");
        foreach (var l in rollout.Lines.Where(l => l.Contains("rollout-0:"))) output.WriteLine(l);

        var delta = TinyScstRun.MaxWeightDelta(c.Plain, c.SyncRun);
        output.WriteLine($"max |Δ| plain vs the sync run on a rollout node shared with an async run: {delta:G3}");
        Assert.True(delta <= Tolerance, $"weights differ by {delta}");
        foreach (var run in new[] { c.SyncRun, c.AsyncRun })
        {
            var s = TinyScstRun.Summary(run);
            Assert.True(s.GetProperty("completed").GetBoolean());
            Assert.True(s.GetProperty("rollouts_by_node").GetProperty(Addr(c.P1)).GetInt64() > 0, $"{run}: rollouts from the shared node");
        }
        // The node's own accounting: one base, an overlay per run.
        var held = rollout.Lines.Single(l => l.Contains("rollout-0: shared by runs on cpu:0: frozen base"));
        Assert.Single(rollout.Lines, l => l.Contains("rollout-0: shared by runs"));
        Assert.Contains(rollout.Lines, l => l.Contains("rollout-0: holds frozen base") && l.Contains("run sync-run") && l.Contains("run async-run"));
        foreach (var run in new[] { "sync-run", "async-run" })
            Assert.Contains(rollout.Lines, l => l.Contains($"rollout-0: run {run} finished after"));
        output.WriteLine(held);
        foreach (var p in new[] { rollout, reward })
        {
            Assert.True(p.Terminate(TimeSpan.FromSeconds(30)), "a shared node did not stop on SIGTERM");
            Assert.Equal(0, p.ExitCode);
        }
    }

    [Fact]
    public async Task Under_a_memory_budget_for_one_overlay_a_shared_rollout_node_evicts_and_refetches_and_the_sync_run_stays_exact()
    {
        using var c = await TwoRuns.Start("shared-budget", syncUpdates: 12, asyncUpdates: 16, checkpointEvery: 6, extraHocon: "", rolloutPerRun: false);
        // The tiny model: frozen base 133,504 bytes, overlay 170,240 bytes; room for the base and one overlay only.
        var budget = Path.Combine(c.Dir, "budget.conf");
        File.WriteAllText(budget, "scst.rollout.memory-budget = 400000\n");
        using var rollout = HostProcess.Start("rollout-shared", "node", "--role", "rollout", "--config", c.SyncConfig, "--run-dir", Path.Combine(c.Dir, "rs"),
            "--port", $"{c.P1}", "--seed-nodes", c.Seed, "--hocon", c.Hocon, budget, "--fast-failure");
        await c.Submit.ExpectExit(0, Run, "the async run finishing");
        await c.Learner.ExpectExit(0, Run, "the sync run finishing");
        var evictions = rollout.Lines.Count(l => l.Contains("memory budget 400000 bytes: run"));
        output.WriteLine($"overlay evictions: {evictions}");
        Assert.True(evictions > 0, "no overlay was evicted under a budget for one");
        Assert.DoesNotContain(rollout.Lines, l => l.Contains("holds frozen base") && l.Contains("run sync-run") && l.Contains("run async-run"));
        var delta = TinyScstRun.MaxWeightDelta(c.Plain, c.SyncRun);
        output.WriteLine($"max |Δ| plain vs the sync run on a shared rollout node evicting overlays: {delta:G3}");
        Assert.True(delta <= Tolerance, $"weights differ by {delta}");
        Assert.True(TinyScstRun.Summary(c.AsyncRun).GetProperty("completed").GetBoolean());
        Assert.True(rollout.Terminate(TimeSpan.FromSeconds(30)), "the rollout node did not stop on SIGTERM");
    }

    /// <summary>
    /// A learner node with its own sync run, an async run sent with `--role submit`, and a rollout node for each run
    /// (started once the learner is up); the plain trainer's run of the sync config is the reference.
    /// </summary>
    sealed class TwoRuns : IDisposable
    {
        public required string Dir, SyncConfig, AsyncConfig, Hocon, Plain, SyncRun, AsyncRun, Seed;
        public required int P1, P2;
        public required HostProcess Learner, Submit, R1, R2;

        public string[] Worker(string role, string config, string runId, string name, int port) =>
            ["--role", role, "train", "--config", config, "--run-id", runId, "--run-dir", Path.Combine(Dir, name), "--port", $"{port}",
             "--seed-nodes", Seed, "--hocon", Hocon, "--fast-failure"];

        /// <param name="rolloutPerRun">False: no rollout node is started (the test starts one shared by both runs).</param>
        public static async Task<TwoRuns> Start(string name, int syncUpdates, int asyncUpdates, int checkpointEvery, string extraHocon, bool rolloutPerRun = true)
        {
            var dir = TinyScstRun.NewDir(name);
            var syncConfig = TinyScstRun.WriteConfig(Directory.CreateDirectory(Path.Combine(dir, "cfg-sync")).FullName, syncUpdates, checkpointEvery, evalEvery: syncUpdates);
            var asyncConfig = TinyScstRun.WriteConfig(Directory.CreateDirectory(Path.Combine(dir, "cfg-async")).FullName, asyncUpdates, checkpointEvery,
                evalEvery: asyncUpdates, mode: "async", maxStaleness: 2);
            var hocon = Path.Combine(dir, "test.conf");
            File.WriteAllText(hocon, "scst.learner.request-timeout = 15s\n" + extraHocon);
            var plain = Path.Combine(dir, "plain");
            await TinyScstRun.PlainRun(syncConfig, plain);
            var (syncRun, asyncRun, lp) = (Path.Combine(dir, "sync-run"), Path.Combine(dir, "async-run"), HostProcess.FreePort());
            var learner = HostProcess.Start("learner", "--role", "learner", "train", "--config", syncConfig, "--run-dir", syncRun, "--port", $"{lp}",
                "--hocon", hocon, "--fast-failure");
            await learner.WaitForLine(l => l.Contains($"member up: {Addr(lp)}"), Run, "its own member-up");
            var c = new TwoRuns
            {
                Dir = dir, SyncConfig = syncConfig, AsyncConfig = asyncConfig, Hocon = hocon, Plain = plain, SyncRun = syncRun, AsyncRun = asyncRun,
                Seed = Addr(lp), P1 = HostProcess.FreePort(), P2 = HostProcess.FreePort(), Learner = learner,
                Submit = HostProcess.Start("submit", "--role", "submit", "train", "--config", asyncConfig, "--run-dir", asyncRun, "--seed-nodes", Addr(lp),
                    "--hocon", hocon, "--fast-failure"),
                R1 = null!, R2 = null!,
            };
            if (!rolloutPerRun) return c;
            c.R1 = HostProcess.Start("rollout-sync", c.Worker("rollout", syncConfig, "sync-run", "r1", c.P1));
            c.R2 = HostProcess.Start("rollout-async", c.Worker("rollout", asyncConfig, "async-run", "r2", c.P2));
            return c;
        }

        public void Dispose()
        {
            foreach (var p in new[] { R1, R2, Submit, Learner }) p?.Dispose();
        }
    }
}
