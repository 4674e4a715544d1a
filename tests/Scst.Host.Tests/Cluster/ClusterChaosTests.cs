using System.Diagnostics;
using System.Text.Json;
using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

[Trait("Category", "Chaos")]
public class ClusterChaosTests(ITestOutputHelper output)
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    static string RunDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "scst-chaos", Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(d);
        return d;
    }

    [Fact]
    public async Task Killed_rollout_node_is_downed_in_seconds_and_a_new_one_can_join_mid_run()
    {
        var run = RunDir();
        // The rollout node gets the lower port on purpose: with plain keep-majority a 1:1 tie would keep the lowest
        // address and the learner would down itself; keep-majority.role = learner must keep the learner.
        var ports = new[] { HostProcess.FreePort(), HostProcess.FreePort(), HostProcess.FreePort() }.Order().ToArray();
        int r1p = ports[0], lp = ports[1], r2p = ports[2];
        var seed = $"akka.tcp://scst@127.0.0.1:{lp}";
        using var learner = HostProcess.Start("learner", "node", "--role", "learner", "--port", $"{lp}", "--run-dir", Path.Combine(run, "learner"), "--fast-failure");
        await learner.WaitForLine(l => l.Contains($"member up: {seed}"), Wait, "its own member-up");

        using var rollout1 = HostProcess.Start("rollout1", "node", "--role", "rollout", "--port", $"{r1p}", "--seed-nodes", seed, "--run-dir", Path.Combine(run, "r1"), "--fast-failure");
        await learner.WaitForLine(l => l.Contains($"member up: akka.tcp://scst@127.0.0.1:{r1p} roles=[rollout]"), Wait, "rollout1 up");

        rollout1.Kill9();
        var sw = Stopwatch.StartNew();
        await learner.WaitForLine(l => l.Contains($"member removed: akka.tcp://scst@127.0.0.1:{r1p}"), Wait, "rollout1 removed after SIGKILL");
        output.WriteLine($"SIGKILL -> member removed by the split-brain resolver: {sw.Elapsed.TotalSeconds:F1} s");
        Assert.Contains(learner.Lines, l => l.Contains("SBR took decision"));

        using var rollout2 = HostProcess.Start("rollout2", "node", "--role", "rollout", "--port", $"{r2p}", "--seed-nodes", seed, "--run-dir", Path.Combine(run, "r2"), "--fast-failure");
        await learner.WaitForLine(l => l.Contains($"member up: akka.tcp://scst@127.0.0.1:{r2p}") && l.Contains("nodes_seen=3"), Wait, "rollout2 up with nodes_seen=3");

        Assert.True(learner.Terminate(TimeSpan.FromSeconds(30)), "learner did not stop on SIGTERM");
        Assert.Equal(0, learner.ExitCode);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "learner", "nodes_seen.json")));
        Assert.Equal(3, doc.RootElement.GetProperty("nodes_seen").GetInt32());
    }

    [Fact]
    public async Task Rollout_without_seed_nodes_and_corrupt_journal_fail_with_clear_errors()
    {
        using (var p = HostProcess.Start("rollout", "node", "--role", "rollout", "--run-dir", RunDir()))
            await p.WaitForLine(l => l.Contains("error: --role rollout joins an existing cluster: give --seed-nodes"), Wait, "the seed-nodes error");

        var run = RunDir();
        File.WriteAllText(Path.Combine(run, "journal.db"), new string('x', 5000));
        using var q = HostProcess.Start("learner", "node", "--role", "learner", "--port", "0", "--run-dir", run);
        await q.WaitForLine(l => l.Contains("error: journal file") && l.Contains("not a SQLite database"), Wait, "the corrupt-journal error");
    }
}
