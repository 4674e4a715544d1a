using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

/// <summary>`status` against a running actor cluster: it joins as a "status" member, prints, gets no work, and leaves.</summary>
[Trait("Category", "Chaos")]
public class StatusCommandTests(ITestOutputHelper output)
{
    static readonly TimeSpan Run = TimeSpan.FromSeconds(150);

    [Fact]
    public async Task Status_prints_the_learner_member_and_its_step_then_leaves()
    {
        var dir = TinyScstRun.NewDir("status");
        // Far more updates than the test waits for: the learner is mid-run when status asks.
        var config = TinyScstRun.WriteConfig(dir, maxIters: 400, checkpointEvery: 100, evalEvery: 200);
        var run = Path.Combine(dir, "learner");
        var lp = HostProcess.FreePort();
        var seed = $"akka.tcp://scst@127.0.0.1:{lp}";
        using var learner = HostProcess.Start("learner", "--role", "all", "train", "--config", config, "--run-dir", run, "--port", $"{lp}");
        await learner.WaitForLine(l => l.Contains($"member up: {seed}"), Run, "its own member-up");
        await TinyScstRun.WaitUntil(() => TinyScstRun.LastUpdate(run) >= 1 || learner.HasExited, Run, "update 1", learner);

        using var status = HostProcess.Start("status", "status", "--seed-nodes", seed, "--timeout", "60");
        await status.ExpectExit(0, Run, "print the status and leave");
        foreach (var l in status.Lines) output.WriteLine(l);

        var member = status.Lines.Single(l => l.TrimStart().StartsWith(seed + " ", StringComparison.Ordinal));
        Assert.Contains(" Up ", member);
        Assert.Contains("learner", member);
        // The run's id is its run folder's name.
        Assert.Contains("runs: 1", status.Lines);
        var step = Regex.Match(status.Lines.Single(l => l.StartsWith("run learner: learner " + seed, StringComparison.Ordinal)), @"step (\d+)/400, policy v(\d+), mode sync");
        Assert.True(step.Success, "no 'step N/400, policy vN, mode sync' in the run's line");
        Assert.True(long.Parse(step.Groups[1].Value) >= 1, $"step {step.Groups[1].Value}: the learner had logged update 1 before status asked");
        Assert.Equal(step.Groups[1].Value, step.Groups[2].Value);
        Assert.Contains(status.Lines, l => l.StartsWith("  workers: 1 rollout", StringComparison.Ordinal));
        Assert.Contains(status.Lines, l => l.StartsWith("  data: the learner owns the data cursor", StringComparison.Ordinal));

        // The status member joined with role status, was given no work, and left the cluster.
        var self = status.Lines.Single(l => l.Contains("(this status client)"));
        Assert.Contains("roles=[status]", self);
        var statusAddress = self.Trim().Split(' ')[0];
        await learner.WaitForLine(l => l.Contains($"member removed: {statusAddress}"), TimeSpan.FromSeconds(30), "the status member leaving");
        Assert.DoesNotContain(learner.Lines, l => l.Contains("worker") && l.Contains(statusAddress));
        Assert.False(learner.HasExited, "the learner kept running");

        // The actor learner's metrics.jsonl carries the figures the Scst meter exports.
        var line = File.ReadLines(Path.Combine(run, "metrics.jsonl")).First(l => l.Contains("\"phase\":\"scst\""));
        using var doc = System.Text.Json.JsonDocument.Parse(line);
        foreach (var key in new[] { "reward_mean", "baseline_mean", "staleness_mean", "rollout_latency_s", "persist_lag_s", "pending_rollouts", "nodes", "samples_consumed", "policy_version" })
            Assert.True(doc.RootElement.TryGetProperty(key, out _), $"metrics.jsonl has no {key}: {line}");
        Assert.Equal(1, doc.RootElement.GetProperty("nodes").GetDouble());
        output.WriteLine(line);
    }

    [Fact]
    public async Task Status_without_a_cluster_says_it_could_not_join()
    {
        var seed = $"akka.tcp://scst@127.0.0.1:{HostProcess.FreePort()}";
        using var status = HostProcess.Start("status", "status", "--seed-nodes", seed, "--timeout", "3");
        await status.ExpectExit(3, TimeSpan.FromSeconds(60), "give up joining");
        Assert.Contains(status.Lines, l => l.Contains("could not join the cluster") && l.Contains(seed));
    }
}
