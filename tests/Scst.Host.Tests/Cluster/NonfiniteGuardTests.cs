using System.Text.Json;
using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

/// <summary>
/// The non-finite guard (run.max_nonfinite) through real processes: SCST_INJECT_NONFINITE makes the loss of chosen
/// updates NaN inside the real update code; the plain trainer and the actor learner skip and count them, resume and
/// journal replay repeat a skip exactly (even without the variable), and max_nonfinite skips in a row stop the run
/// with one line and exit code 2.
/// </summary>
[Trait("Category", "Chaos")]
public class NonfiniteGuardTests(ITestOutputHelper output)
{
    static readonly TimeSpan Run = TimeSpan.FromSeconds(150);
    const string Inject = "SCST_INJECT_NONFINITE";

    static HostProcess Start(string name, string? inject, params string[] args) =>
        HostProcess.StartWithEnvironment(name, inject is null ? new Dictionary<string, string>() : new() { [Inject] = inject }, args);

    /// <summary>The scst rows of metrics.jsonl by step (the last row of a step wins: replay logs it again).</summary>
    static Dictionary<long, JsonElement> UpdateRows(string run) =>
        File.ReadLines(Path.Combine(run, "metrics.jsonl")).Where(l => l.Contains("\"phase\":\"scst\""))
            .Select(l => JsonDocument.Parse(l).RootElement).GroupBy(r => r.GetProperty("step").GetInt64()).ToDictionary(g => g.Key, g => g.Last());

    [Fact]
    public async Task An_injected_nan_loss_is_skipped_and_counted_and_resume_and_replay_repeat_it_exactly()
    {
        var dir = TinyScstRun.NewDir("nonfinite-skip");
        // No checkpoint before the end (checkpoint_every > max_iters): a killed actor learner replays every journaled update, the skipped one included.
        var config = TinyScstRun.WriteConfig(dir, maxIters: 48, checkpointEvery: 100);
        var plain = Path.Combine(dir, "plain");
        using (var p = Start("plain", "3", "train", "--config", config, "--run-dir", plain))
        {
            await p.ExpectExit(0, Run, "finish the plain run");
            Assert.Contains(p.Lines, l => l.Contains("update 3: non-finite loss; update skipped"));
        }
        var rows = UpdateRows(plain);
        Assert.Equal(0, rows[2].GetProperty("nonfinite_skipped").GetInt64());
        Assert.Equal(1, rows[3].GetProperty("nonfinite_skipped").GetInt64());
        Assert.Equal("NaN", rows[3].GetProperty("loss").GetString()); // metrics.jsonl writes a non-finite figure as a string
        Assert.Equal(JsonValueKind.Number, rows[4].GetProperty("loss").ValueKind);
        Assert.Equal(1, rows[48].GetProperty("nonfinite_skipped").GetInt64());
        var s = TinyScstRun.Summary(plain);
        Assert.Equal(1, s.GetProperty("nonfinite_skipped").GetInt64());
        Assert.Equal(48, s.GetProperty("updates").GetInt64());
        Assert.True(s.GetProperty("completed").GetBoolean());

        // The skip changed the weights' path: the same run without it ends elsewhere (the test can fail).
        var clean = Path.Combine(dir, "clean");
        using (var p = Start("clean", null, "train", "--config", config, "--run-dir", clean, "--stop-after", "5"))
            await p.ExpectExit(0, Run, "a run without the injection");
        var stopped = Path.Combine(dir, "plain-resumed");
        using (var p = Start("plain-stop", "3", "train", "--config", config, "--run-dir", stopped, "--stop-after", "5"))
            await p.ExpectExit(0, Run, "stop after 5 updates");
        Assert.True(TinyScstRun.MaxWeightDelta(clean, stopped) > 0, "the skipped update made no difference");

        // Plain trainer: resumed without the variable, the run continues from its checkpoint with the count restored.
        using (var p = Start("plain-resume", null, "train", "--config", config, "--run-dir", stopped, "--resume"))
            await p.ExpectExit(0, Run, "finish the resumed plain run");
        Assert.Equal(0.0, TinyScstRun.MaxWeightDelta(plain, stopped));
        Assert.Equal(1, TinyScstRun.Summary(stopped).GetProperty("nonfinite_skipped").GetInt64());

        // Actor learner: killed after the skip, restarted without the variable; replay must honour the journaled skip.
        var actors = Path.Combine(dir, "actors");
        string[] args = ["--role", "all", "train", "--config", config, "--run-dir", actors];
        using (var first = Start("learner-1", "3", args))
        {
            await TinyScstRun.WaitUntil(() => TinyScstRun.LastUpdate(actors) >= 6 || first.HasExited, Run, "update 6", first);
            first.Kill9();
        }
        var killedAt = TinyScstRun.LastUpdate(actors);
        output.WriteLine($"SIGKILL at update {killedAt}");
        Assert.True(killedAt < 48, "the run finished before the kill");
        using (var second = Start("learner-2", null, args))
        {
            await second.ExpectExit(0, Run, "finish the resumed actor run");
            output.WriteLine(second.Lines.First(l => l.Contains("learner: journal at update")));
        }
        var delta = TinyScstRun.MaxWeightDelta(plain, actors);
        output.WriteLine($"max |Δ| plain (skip at 3) vs killed + replayed actor run: {delta:G3}");
        Assert.Equal(0.0, delta);
        var a = TinyScstRun.Summary(actors);
        Assert.Equal(1, a.GetProperty("nonfinite_skipped").GetInt64());
        Assert.Equal(48, a.GetProperty("policy_version").GetInt64());
        Assert.Equal(2400, a.GetProperty("samples_consumed").GetInt64());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Max_nonfinite_updates_in_a_row_stop_the_run_with_one_line_and_exit_code_2(bool actors)
    {
        var dir = TinyScstRun.NewDir("nonfinite-stop");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 12, checkpointEvery: 100);
        var run = Path.Combine(dir, "run");
        string[] args = actors ? ["--role", "all", "train", "--config", config, "--run-dir", run] : ["train", "--config", config, "--run-dir", run];
        // Updates 2..6: five in a row, the default run.max_nonfinite.
        using (var p = Start(actors ? "actors" : "plain", "2-6", args))
        {
            await p.ExpectExit(2, Run, "stop after 5 non-finite updates in a row");
            var error = p.Lines.Where(l => l.Contains("stopped at update")).ToList();
            Assert.Contains(error, l => l.Contains("stopped at update 6: 5 updates in a row had a non-finite loss (run.max_nonfinite: 5)"));
            Assert.DoesNotContain(p.Lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
            Assert.DoesNotContain(p.Lines, l => l.Contains("NonfiniteUpdatesException"));
        }
        var s = TinyScstRun.Summary(run);
        Assert.False(s.GetProperty("completed").GetBoolean());
        Assert.Equal(5, s.GetProperty("nonfinite_skipped").GetInt64());
        Assert.Equal(6, s.GetProperty(actors ? "policy_version" : "updates").GetInt64());

        // Resumed (the cause gone), the run continues from update 6 to the end.
        string[] resume = actors ? args : [.. args, "--resume"];
        using (var p = Start("resume", null, resume))
            await p.ExpectExit(0, Run, "finish the resumed run");
        var done = TinyScstRun.Summary(run);
        Assert.True(done.GetProperty("completed").GetBoolean());
        Assert.Equal(12, done.GetProperty("updates").GetInt64());
        Assert.Equal(5, done.GetProperty("nonfinite_skipped").GetInt64());
    }
}
