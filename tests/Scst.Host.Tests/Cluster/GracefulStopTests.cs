using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

/// <summary>
/// SIGTERM on a learner mid-run: it completes the update in hand, writes a checkpoint, tells its rollout node (which
/// leaves and exits 0) and exits 0; a second SIGTERM exits at once. Either way the same command continues the run to
/// exactly the weights of the uninterrupted plain trainer.
/// </summary>
[Trait("Category", "Chaos")]
public class GracefulStopTests(ITestOutputHelper output)
{
    static readonly TimeSpan Run = TimeSpan.FromSeconds(150);
    const double Tolerance = 1e-6;

    [Fact]
    public async Task Sigterm_stops_the_learner_with_a_checkpoint_and_a_restart_ends_with_the_plain_trainers_weights()
    {
        var dir = TinyScstRun.NewDir("sigterm");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 200, checkpointEvery: 100, evalEvery: 200);
        var plain = Path.Combine(dir, "plain");
        await TinyScstRun.PlainRun(config, plain);

        var learnerDir = Path.Combine(dir, "learner");
        var lp = HostProcess.FreePort();
        var seed = $"akka.tcp://scst@127.0.0.1:{lp}";
        string[] Learner() => ["--role", "learner", "train", "--config", config, "--run-dir", learnerDir, "--port", $"{lp}", "--fast-failure"];
        string[] Rollout() => ["--role", "rollout", "train", "--config", config, "--run-dir", Path.Combine(dir, "r1"), "--port", $"{HostProcess.FreePort()}",
            "--seed-nodes", seed, "--fast-failure"];
        long stoppedAt;
        using (var learner = HostProcess.Start("learner", Learner()))
        using (var rollout = HostProcess.Start("rollout", Rollout()))
        {
            await TinyScstRun.WaitUntil(() => TinyScstRun.LastUpdate(learnerDir) >= 10, Run, "update 10", learner, rollout);
            Assert.True(learner.Terminate(TimeSpan.FromSeconds(60)), "the learner did not stop within 60 s of SIGTERM");
            Assert.Equal(0, learner.ExitCode);
            var line = await learner.WaitForLine(l => l.Contains("stopped at update"), TimeSpan.FromSeconds(5), "where it stopped");
            output.WriteLine(line);
            await rollout.ExpectExit(0, TimeSpan.FromSeconds(30), "leave after the learner stopped");
            await rollout.WaitForLine(l => l.Contains("the learner stopped the run at update"), TimeSpan.FromSeconds(5), "that the run stopped");
            Assert.DoesNotContain(rollout.Lines, l => l.Contains("member unreachable"));
            Assert.DoesNotContain(learner.Lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
        }
        stoppedAt = TinyScstRun.LastUpdate(learnerDir);
        var s = TinyScstRun.Summary(learnerDir);
        Assert.False(s.GetProperty("completed").GetBoolean());
        Assert.Equal(stoppedAt, s.GetProperty("updates").GetInt64());
        Assert.EndsWith($"step_{stoppedAt:D7}.safetensors", s.GetProperty("final_checkpoint").GetString());
        Assert.True(stoppedAt is >= 10 and < 200, $"stopped at update {stoppedAt}");

        using (var learner = HostProcess.Start("learner-again", Learner()))
        using (var rollout = HostProcess.Start("rollout-again", Rollout()))
        {
            await learner.ExpectExit(0, Run, "finish the resumed run");
            Assert.Contains(learner.Lines, l => l.Contains($"journal at update {stoppedAt}, checkpoint at update {stoppedAt}; replaying 0 updates"));
            await rollout.ExpectExit(0, TimeSpan.FromSeconds(30), "exit after the run");
        }
        var delta = TinyScstRun.MaxWeightDelta(plain, learnerDir);
        output.WriteLine($"stopped at update {stoppedAt}; max |Δ| plain vs stopped-and-restarted: {delta:G3}");
        Assert.True(delta <= Tolerance, $"weights differ by {delta}");
    }

    const int SigTerm = 15;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);

    [Fact]
    public async Task A_second_sigterm_exits_at_once_and_the_run_still_resumes_exactly()
    {
        var dir = TinyScstRun.NewDir("sigterm2");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 200, checkpointEvery: 100, evalEvery: 200);
        var plain = Path.Combine(dir, "plain");
        await TinyScstRun.PlainRun(config, plain);
        var run = Path.Combine(dir, "all");
        string[] All() => ["--role", "all", "train", "--config", config, "--run-dir", run];
        using (var all = HostProcess.Start("all", All()))
        {
            await TinyScstRun.WaitUntil(() => TinyScstRun.LastUpdate(run) >= 10, Run, "update 10", all);
            // The second signal lands while the graceful stop is under way (it takes at least its 500 ms hand-off to the workers).
            Assert.Equal(0, Kill(all.Pid, SigTerm));
            await all.WaitForLine(l => l.Contains("stop requested"), TimeSpan.FromSeconds(30), "the graceful stop starting");
            Assert.Equal(0, Kill(all.Pid, SigTerm));
            var code = await all.WaitForExit(TimeSpan.FromSeconds(20), "exit on the second SIGTERM");
            Assert.Equal(143, code);
            Assert.DoesNotContain(all.Lines, l => l.Contains("stopped at update")); // it did not wait for the graceful stop
        }
        using (var all = HostProcess.Start("all-again", All()))
            await all.ExpectExit(0, Run, "finish the resumed run");
        var delta = TinyScstRun.MaxWeightDelta(plain, run);
        output.WriteLine($"max |Δ| plain vs killed-by-second-signal-and-resumed: {delta:G3}");
        Assert.True(delta <= Tolerance, $"weights differ by {delta}");
    }
}
