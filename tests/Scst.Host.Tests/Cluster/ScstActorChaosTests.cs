using Npgsql;
using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

/// <summary>
/// SCST over actors with real Scst.Host processes on 127.0.0.1: sync mode against the plain trainer, a SIGKILLed
/// learner resumed from its journal, rollout nodes killed and joining mid-run. Each uses <see cref="TinyScstRun"/>.
/// </summary>
[Trait("Category", "Chaos")]
public class ScstActorChaosTests(ITestOutputHelper output)
{
    static readonly TimeSpan Run = TimeSpan.FromSeconds(150);
    const double Tolerance = 1e-6;

    static Task PlainRun(string config, string runDir) => TinyScstRun.PlainRun(config, runDir);

    static void AssertEveryImageOncePerEpoch(string run, int fullEpochs)
    {
        var s = TinyScstRun.Summary(run);
        Assert.Equal(0, s.GetProperty("duplicate_samples").GetInt64());
        var perEpoch = s.GetProperty("samples_consumed_per_epoch");
        for (var e = 0; e < fullEpochs; e++) Assert.Equal(200, perEpoch.GetProperty(e.ToString()).GetInt32());
    }

    [Fact]
    public async Task Role_all_sync_mode_ends_with_the_plain_trainers_weights()
    {
        var dir = TinyScstRun.NewDir("sync-equal");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 8, checkpointEvery: 4);
        var plain = Path.Combine(dir, "plain");
        var actors = Path.Combine(dir, "actors");
        await PlainRun(config, plain);
        using (var p = HostProcess.Start("all", "--role", "all", "train", "--config", config, "--run-dir", actors))
            await p.ExpectExit(0, Run, "finish the actor run");

        var delta = TinyScstRun.MaxWeightDelta(plain, actors);
        output.WriteLine($"max |Δ| plain vs --role all: {delta:G3}");
        Assert.True(delta <= Tolerance, $"weights differ by {delta}");
        var s = TinyScstRun.Summary(actors);
        Assert.Equal(8, s.GetProperty("policy_version").GetInt64());
        Assert.Equal(400, s.GetProperty("samples_consumed").GetInt64());
        Assert.Equal(0, s.GetProperty("rollouts_dropped_stale").GetInt64());
        Assert.True(s.GetProperty("completed").GetBoolean());
        AssertEveryImageOncePerEpoch(actors, 2);
        // Same validation metrics too: the actor run evaluates the same weights.
        Assert.Equal(TinyScstRun.Summary(plain).GetProperty("metrics").GetProperty("test").GetProperty("CIDEr").GetDouble(),
            s.GetProperty("metrics").GetProperty("test").GetProperty("CIDEr").GetDouble(), 9);
    }

    [Fact]
    public async Task Role_all_sync_mode_under_runner_iter_with_carried_micro_batches_ends_with_the_plain_trainers_weights()
    {
        // runner_iter: 3 inner epochs of 3 iterations, accum 2: one update per inner epoch; the third micro-batch of an
        // inner epoch joins the next update (LAVIS never zeroes it), so updates take 2, 3, 3 micro-batches of 25.
        var dir = TinyScstRun.NewDir("sync-runner-iter");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 9, checkpointEvery: 2, evalEvery: 3, itersPerInnerEpoch: 3);
        var plain = Path.Combine(dir, "plain");
        var actors = Path.Combine(dir, "actors");
        await PlainRun(config, plain);
        using (var p = HostProcess.Start("all", "--role", "all", "train", "--config", config, "--run-dir", actors))
            await p.ExpectExit(0, Run, "finish the actor run");

        var delta = TinyScstRun.MaxWeightDelta(plain, actors);
        output.WriteLine($"max |Δ| plain vs --role all (runner_iter): {delta:G3}");
        Assert.True(delta <= Tolerance, $"weights differ by {delta}");
        var s = TinyScstRun.Summary(actors);
        Assert.Equal(3, s.GetProperty("policy_version").GetInt64());
        Assert.Equal((2 + 3 + 3) * 25, s.GetProperty("samples_consumed").GetInt64());
        Assert.Equal(TinyScstRun.Summary(plain).GetProperty("samples_consumed").GetInt64(), s.GetProperty("samples_consumed").GetInt64());
    }

    [Fact]
    public async Task Sync_mode_spreads_each_micro_batch_over_two_rollout_actors_with_the_plain_trainers_weights()
    {
        var dir = TinyScstRun.NewDir("sync-split");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 6, checkpointEvery: 3);
        var hocon = Path.Combine(dir, "two.conf");
        File.WriteAllText(hocon, "scst.rollout.actors = 2\n");
        var plain = Path.Combine(dir, "plain");
        var actors = Path.Combine(dir, "actors");
        await PlainRun(config, plain);
        using (var p = HostProcess.Start("split", "--role", "all", "train", "--config", config, "--run-dir", actors, "--hocon", hocon))
            await p.ExpectExit(0, Run, "finish the split actor run");

        var delta = TinyScstRun.MaxWeightDelta(plain, actors);
        output.WriteLine($"max |Δ| plain vs 2 rollout actors: {delta:G3}");
        Assert.True(delta <= Tolerance, $"weights differ by {delta}");
        AssertEveryImageOncePerEpoch(actors, 1);
        var workers = File.ReadAllLines(Path.Combine(actors, "metrics.jsonl")).Where(l => l.Contains("\"phase\":\"scst\""))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("rollout_workers").GetDouble()).ToList();
        output.WriteLine($"rollout workers per update: {string.Join(" ", workers)}");
        Assert.Equal(6, workers.Count);
        // Once both are registered, each micro-batch is cut into one part per rollout actor: every update uses both.
        Assert.True(workers.Count(w => w == 2) >= 4, "the parts of an update should be spread over both rollout actors");
    }

    [Fact]
    public Task Killed_learner_resumes_from_journal_and_checkpoint_with_the_uninterrupted_weights() => KilledLearnerResumes(null);

    [SkippableFact]
    public async Task Killed_learner_resumes_from_a_postgres_journal()
    {
        var (hocon, drop) = PostgresHocon();
        try { await KilledLearnerResumes(hocon); }
        finally { drop(); }
    }

    async Task KilledLearnerResumes(string? hoconText)
    {
        var dir = TinyScstRun.NewDir("learner-kill");
        // Long enough that the kill lands mid-run: 16 updates could finish between two polls of metrics.jsonl.
        var config = TinyScstRun.WriteConfig(dir, maxIters: 48, checkpointEvery: 5);
        var plain = Path.Combine(dir, "plain");
        var actors = Path.Combine(dir, "actors");
        var args = new List<string> { "--role", "all", "train", "--config", config, "--run-dir", actors };
        if (hoconText is not null)
        {
            File.WriteAllText(Path.Combine(dir, "pg.conf"), hoconText);
            args.AddRange(["--hocon", Path.Combine(dir, "pg.conf")]);
        }
        await PlainRun(config, plain);

        using (var first = HostProcess.Start("learner-1", [.. args]))
        {
            await TinyScstRun.WaitUntil(() => TinyScstRun.LastUpdate(actors) >= 7 || first.HasExited, Run, "update 7", first);
            first.Kill9();
        }
        var killedAt = TinyScstRun.LastUpdate(actors);
        output.WriteLine($"SIGKILL at update {killedAt}");
        Assert.True(killedAt < 48, "the run finished before the kill");

        using var second = HostProcess.Start("learner-2", [.. args]);
        await second.ExpectExit(0, Run, "finish the resumed run");
        var resumed = second.Lines.First(l => l.Contains("learner: journal at update"));
        output.WriteLine(resumed);

        var delta = TinyScstRun.MaxWeightDelta(plain, actors);
        output.WriteLine($"max |Δ| uninterrupted plain run vs killed+resumed actor run: {delta:G3}");
        Assert.True(delta <= Tolerance, $"weights differ by {delta}");
        var s = TinyScstRun.Summary(actors);
        Assert.Equal(48, s.GetProperty("updates").GetInt64());
        Assert.Equal(2400, s.GetProperty("samples_consumed").GetInt64());
        AssertEveryImageOncePerEpoch(actors, 12);
    }

    [Fact]
    public Task Rollout_nodes_killed_and_joining_mid_run_lose_no_samples() => RolloutNodesComeAndGo(null);

    [SkippableFact]
    public async Task Rollout_nodes_killed_and_joining_mid_run_with_a_postgres_journal()
    {
        var (hocon, drop) = PostgresHocon();
        try { await RolloutNodesComeAndGo(hocon); }
        finally { drop(); }
    }

    async Task RolloutNodesComeAndGo(string? pgHocon)
    {
        var dir = TinyScstRun.NewDir("rollout-kill");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 40, checkpointEvery: 10, evalEvery: 20);
        var hocon = Path.Combine(dir, "test.conf");
        // A request to a dead node normally returns when the node is downed (seconds); the timeout is the backstop.
        File.WriteAllText(hocon, "scst.learner.request-timeout = 15s\n" + (pgHocon ?? ""));
        var plain = Path.Combine(dir, "plain");
        var learnerDir = Path.Combine(dir, "learner");
        await PlainRun(config, plain);

        var lp = HostProcess.FreePort();
        var seed = $"akka.tcp://scst@127.0.0.1:{lp}";
        string[] Node(string role, string name, int port) =>
            ["--role", role, "train", "--config", config, "--run-dir", Path.Combine(dir, name), "--port", $"{port}", "--seed-nodes", seed, "--hocon", hocon, "--fast-failure"];
        using var learner = HostProcess.Start("learner", "--role", "learner", "train", "--config", config, "--run-dir", learnerDir, "--port", $"{lp}",
            "--hocon", hocon, "--fast-failure");
        await learner.WaitForLine(l => l.Contains($"member up: {seed}"), Run, "its own member-up");
        int p1 = HostProcess.FreePort(), p2 = HostProcess.FreePort(), p3 = HostProcess.FreePort(), pr = HostProcess.FreePort();
        using var r1 = HostProcess.Start("rollout1", Node("rollout", "r1", p1));
        using var r2 = HostProcess.Start("rollout2", Node("rollout", "r2", p2));
        // Scoring goes to a reward node once it has registered (the learner's own pool covers until then).
        using var reward = HostProcess.Start("reward", Node("reward", "rw", pr));
        string Addr(int p) => $"akka.tcp://scst@127.0.0.1:{p}";

        await TinyScstRun.WaitUntil(() => TinyScstRun.RolloutNodes(learnerDir).IsSupersetOf([Addr(p1), Addr(p2)]), Run, "both rollout nodes contributing", learner, r1, r2);
        r1.Kill9();
        output.WriteLine($"SIGKILL rollout1 at update {TinyScstRun.LastUpdate(learnerDir)}");

        using var r3 = HostProcess.Start("rollout3", Node("rollout", "r3", p3));
        var joinedAt = DateTime.UtcNow;
        await learner.WaitForLine(l => l.Contains($"member up: {Addr(p3)}"), Run, "rollout3 up");
        var upAfter = DateTime.UtcNow - joinedAt;
        await TinyScstRun.WaitUntil(() => TinyScstRun.RolloutNodes(learnerDir).Contains(Addr(p3)), Run, "rollout3's rollouts in metrics.jsonl", learner, r3);
        output.WriteLine($"rollout3: process start -> member up {upAfter.TotalSeconds:F1} s, -> first rollout in metrics {(DateTime.UtcNow - joinedAt).TotalSeconds:F1} s (at update {TinyScstRun.LastUpdate(learnerDir)})");

        await learner.ExpectExit(0, Run, "finish the run");
        // Workers leave when the learner says the run is over.
        await r2.ExpectExit(0, TimeSpan.FromSeconds(30), "exit after the run");
        await r3.ExpectExit(0, TimeSpan.FromSeconds(30), "exit after the run");
        await reward.ExpectExit(0, TimeSpan.FromSeconds(30), "exit after the run");
        Assert.Contains(learner.Lines, l => l.Contains(": reward worker") && l.Contains($"127.0.0.1:{pr}"));

        var s = TinyScstRun.Summary(learnerDir);
        Assert.Equal(40, s.GetProperty("updates").GetInt64());
        Assert.True(s.GetProperty("completed").GetBoolean());
        AssertEveryImageOncePerEpoch(learnerDir, 10);
        Assert.True(s.GetProperty("nodes_seen").GetInt32() >= 5, "learner + 3 rollout nodes + a reward node");
        var byNode = s.GetProperty("rollouts_by_node");
        Assert.True(byNode.GetProperty(Addr(p3)).GetInt64() > 0);
        // Which node rolled out a batch does not matter: sync mode still reproduces the single-process run.
        var delta = TinyScstRun.MaxWeightDelta(plain, learnerDir);
        output.WriteLine($"max |Δ| plain vs learner + changing rollout nodes: {delta:G3}");
        Assert.True(delta <= Tolerance, $"weights differ by {delta}");
    }

    [Fact]
    public async Task Sync_run_with_one_or_three_rollout_workers_one_joining_mid_run_ends_with_the_plain_trainers_weights()
    {
        var dir = TinyScstRun.NewDir("elastic");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 120, checkpointEvery: 60, evalEvery: 120);
        var hocon = Path.Combine(dir, "test.conf");
        File.WriteAllText(hocon, "scst.learner.request-timeout = 15s\n");
        var plain = Path.Combine(dir, "plain");
        await PlainRun(config, plain);

        // One rollout worker: the learner's own replica.
        var one = Path.Combine(dir, "one");
        using (var p = HostProcess.Start("one", "--role", "all", "train", "--config", config, "--run-dir", one))
            await p.ExpectExit(0, Run, "finish the one-worker run");
        var deltaOne = TinyScstRun.MaxWeightDelta(plain, one);
        output.WriteLine($"max |Δ| plain vs 1 rollout worker: {deltaOne:G3}");
        Assert.True(deltaOne <= Tolerance, $"1 worker: weights differ by {deltaOne}");

        // Three rollout nodes: two from the start, a third joining mid-run; the learner has no replica of its own.
        var learnerDir = Path.Combine(dir, "learner");
        var lp = HostProcess.FreePort();
        var seed = $"akka.tcp://scst@127.0.0.1:{lp}";
        string Addr(int port) => $"akka.tcp://scst@127.0.0.1:{port}";
        string[] Node(string name, int port) =>
            ["--role", "rollout", "train", "--config", config, "--run-dir", Path.Combine(dir, name), "--port", $"{port}", "--seed-nodes", seed, "--hocon", hocon, "--fast-failure"];
        using var learner = HostProcess.Start("learner", "--role", "learner", "train", "--config", config, "--run-dir", learnerDir, "--port", $"{lp}",
            "--hocon", hocon, "--fast-failure");
        await learner.WaitForLine(l => l.Contains($"member up: {seed}"), Run, "its own member-up");
        int p1 = HostProcess.FreePort(), p2 = HostProcess.FreePort(), p3 = HostProcess.FreePort();
        using var r1 = HostProcess.Start("rollout1", Node("r1", p1));
        using var r2 = HostProcess.Start("rollout2", Node("r2", p2));
        await TinyScstRun.WaitUntil(() => TinyScstRun.RolloutNodes(learnerDir).IsSupersetOf([Addr(p1), Addr(p2)]), Run, "both rollout nodes contributing", learner, r1, r2);
        var joinAt = TinyScstRun.LastUpdate(learnerDir);
        using var r3 = HostProcess.Start("rollout3", Node("r3", p3));
        await TinyScstRun.WaitUntil(() => TinyScstRun.RolloutNodes(learnerDir).Contains(Addr(p3)), Run, "rollout3's rollouts in metrics.jsonl", learner, r3);
        output.WriteLine($"rollout3 started at update {joinAt}, first rollout by update {TinyScstRun.LastUpdate(learnerDir)}");
        await learner.ExpectExit(0, Run, "finish the three-worker run");
        foreach (var r in new[] { r1, r2, r3 }) await r.ExpectExit(0, TimeSpan.FromSeconds(30), "exit after the run");

        var s = TinyScstRun.Summary(learnerDir);
        var byNode = s.GetProperty("rollouts_by_node");
        output.WriteLine($"rollouts by node: {byNode.GetRawText()}");
        foreach (var port in new[] { p1, p2, p3 })
            Assert.True(byNode.TryGetProperty(Addr(port), out var n) && n.GetInt64() > 0, $"rollout node {port} served rollouts");
        var workers = File.ReadAllLines(Path.Combine(learnerDir, "metrics.jsonl")).Where(l => l.Contains("\"phase\":\"scst\""))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("rollout_workers").GetDouble()).ToList();
        Assert.Contains(3.0, workers); // an update used all three once the third had joined
        AssertEveryImageOncePerEpoch(learnerDir, 30);
        var delta = TinyScstRun.MaxWeightDelta(plain, learnerDir);
        output.WriteLine($"max |Δ| plain vs 3 rollout workers (one joining mid-run): {delta:G3}");
        Assert.True(delta <= Tolerance, $"3 workers: weights differ by {delta}");
    }

    [Fact]
    public async Task Role_all_learner_with_a_remote_rollout_node_uses_both_weight_routes_and_keeps_the_plain_trainers_weights()
    {
        // The learner's own replica gets weights in memory; the remote node fetches files (written only once it joins).
        var dir = TinyScstRun.NewDir("all-plus-remote");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 200, checkpointEvery: 100, evalEvery: 200);
        var hocon = Path.Combine(dir, "test.conf");
        File.WriteAllText(hocon, "scst.learner.request-timeout = 15s\n");
        var plain = Path.Combine(dir, "plain");
        var learnerDir = Path.Combine(dir, "learner");
        await PlainRun(config, plain);

        int lp = HostProcess.FreePort(), rp = HostProcess.FreePort();
        var seed = $"akka.tcp://scst@127.0.0.1:{lp}";
        // The rollout node starts first and keeps trying to join, so it is there early in the learner's run.
        using var remote = HostProcess.Start("rollout", "--role", "rollout", "train", "--config", config, "--run-dir", Path.Combine(dir, "r1"),
            "--port", $"{rp}", "--seed-nodes", seed, "--hocon", hocon, "--fast-failure");
        using var learner = HostProcess.Start("all", "--role", "all", "train", "--config", config, "--run-dir", learnerDir, "--port", $"{lp}",
            "--hocon", hocon, "--fast-failure");
        await learner.ExpectExit(0, Run, "finish the run");
        await remote.ExpectExit(0, TimeSpan.FromSeconds(30), "exit after the run");

        var s = TinyScstRun.Summary(learnerDir);
        Assert.Equal(200, s.GetProperty("updates").GetInt64());
        var byNode = s.GetProperty("rollouts_by_node");
        output.WriteLine($"rollouts by node: {byNode.GetRawText()}");
        Assert.True(byNode.GetProperty($"akka.tcp://scst@127.0.0.1:{rp}").GetInt64() > 0, "the remote node contributed rollouts");
        Assert.True(byNode.GetProperty(seed).GetInt64() > 0, "the learner's own replica contributed rollouts");
        Assert.True(Directory.EnumerateFiles(Path.Combine(learnerDir, "weights"), "policy-v*.safetensors").Any(), "weight files were written for the remote node");
        var delta = TinyScstRun.MaxWeightDelta(plain, learnerDir);
        output.WriteLine($"max |Δ| plain vs --role all + remote rollout node: {delta:G3}");
        Assert.True(delta <= Tolerance, $"weights differ by {delta}");
    }

    [Fact]
    public async Task Async_mode_runs_with_two_rollout_actors_and_reports_staleness()
    {
        var dir = TinyScstRun.NewDir("async");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 12, checkpointEvery: 6, mode: "async", maxStaleness: 1);
        var hocon = Path.Combine(dir, "two.conf");
        File.WriteAllText(hocon, "scst.rollout.actors = 2\n");
        var run = Path.Combine(dir, "async");
        using (var p = HostProcess.Start("async", "--role", "all", "train", "--config", config, "--run-dir", run, "--hocon", hocon))
            await p.ExpectExit(0, Run, "finish the async run");
        var s = TinyScstRun.Summary(run);
        Assert.Equal(12, s.GetProperty("updates").GetInt64());
        Assert.Equal(0, s.GetProperty("duplicate_samples").GetInt64());
        // Two full epochs at least: async may leave the last drawn batches unconsumed, never an earlier epoch's.
        Assert.Equal(200, s.GetProperty("samples_consumed_per_epoch").GetProperty("0").GetInt32());
        var lines = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Where(l => l.Contains("\"phase\":\"scst\"")).ToList();
        Assert.Equal(12, lines.Count);
        foreach (var l in lines)
        {
            using var d = System.Text.Json.JsonDocument.Parse(l);
            var m = d.RootElement;
            Assert.InRange(m.GetProperty("staleness_max").GetDouble(), 0, 1);
            Assert.InRange(m.GetProperty("is_weight_max").GetDouble(), 0, 2.0 + 1e-6);
        }
        output.WriteLine($"async: dropped stale {s.GetProperty("rollouts_dropped_stale").GetInt64()}, staleness per update: " +
                         string.Join(" ", lines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("staleness_mean").GetDouble())));
    }

    internal static (string Hocon, Action Drop) PostgresHocon()
    {
        var admin = Environment.GetEnvironmentVariable("SCST_TEST_POSTGRES");
        Skip.If(string.IsNullOrWhiteSpace(admin), "SCST_TEST_POSTGRES is not set: PostgreSQL variants of the actor chaos tests skipped");
        var name = "scst_chaos_" + Guid.NewGuid().ToString("N")[..12];
        using (var c = new NpgsqlConnection(admin)) { c.Open(); using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c); cmd.ExecuteNonQuery(); }
        var cs = new NpgsqlConnectionStringBuilder(admin) { Database = name, Pooling = false }.ConnectionString;
        return ($"scst.persistence {{ backend = postgresql, connection-string = \"{cs}\" }}\n", () =>
        {
            using var c = new NpgsqlConnection(admin);
            c.Open();
            using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", c);
            cmd.ExecuteNonQuery();
        });
    }
}

[Trait("Category", "Chaos")]
public class ScstActorStoreErrorTests
{
    static readonly TimeSpan Run = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Corrupt_checkpoint_or_journal_stops_the_learner_with_a_clear_error()
    {
        var dir = TinyScstRun.NewDir("store-errors");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 8, checkpointEvery: 2);
        var run = Path.Combine(dir, "run");
        string[] args = ["--role", "all", "train", "--config", config, "--run-dir", run, "--stop-after", "4"];
        using (var p = HostProcess.Start("first", args))
            await p.ExpectExit(0, Run, "stop after 4 updates");

        // A checkpoint whose bytes changed after its SHA-256 was recorded (truncated, as a full disk would leave it).
        var ckpt = TinyScstRun.LatestCheckpoint(run);
        var bytes = File.ReadAllBytes(ckpt);
        File.WriteAllBytes(ckpt, bytes[..(bytes.Length / 2)]);
        using (var p = HostProcess.Start("corrupt-checkpoint", args))
        {
            await p.WaitForLine(l => l.Contains("is corrupt or was changed") && l.Contains(Path.GetFileName(ckpt)), Run, "the corrupt-checkpoint error");
            await p.ExpectExit(2, Run, "exit with an error");
        }
        File.WriteAllBytes(ckpt, bytes);

        // A journal file that is not a database at all.
        File.WriteAllBytes(Path.Combine(run, "journal.db"), new byte[4096]);
        using (var p = HostProcess.Start("corrupt-journal", args))
        {
            await p.WaitForLine(l => l.Contains("error: journal file") && l.Contains("journal.db"), Run, "the corrupt-journal error");
            await p.ExpectExit(2, Run, "exit with an error");
        }
    }
}
