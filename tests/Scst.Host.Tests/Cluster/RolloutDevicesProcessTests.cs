using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

/// <summary>A rollout node given two devices (CPU slots here) runs one rollout actor per device, each with its own model, and the sync run stays exact.</summary>
[Trait("Category", "Chaos")]
public class RolloutDevicesProcessTests(ITestOutputHelper output)
{
    static readonly TimeSpan Run = TimeSpan.FromSeconds(150);

    [Fact]
    public async Task A_rollout_node_with_two_cpu_slots_serves_from_both_with_a_model_each_and_the_plain_trainers_weights()
    {
        var dir = TinyScstRun.NewDir("devices");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 40, checkpointEvery: 40, evalEvery: 40);
        var plain = Path.Combine(dir, "plain");
        await TinyScstRun.PlainRun(config, plain);
        var hocon = Path.Combine(dir, "devices.conf");
        File.WriteAllText(hocon, "scst.rollout.devices = [\"cpu:0\", \"cpu:1\"]\n");
        var learnerDir = Path.Combine(dir, "learner");
        int lp = HostProcess.FreePort(), rp = HostProcess.FreePort();
        var node = $"akka.tcp://scst@127.0.0.1:{rp}";
        using var learner = HostProcess.Start("learner", "--role", "learner", "train", "--config", config, "--run-dir", learnerDir, "--port", $"{lp}", "--fast-failure");
        using var rollout = HostProcess.Start("rollout", "--role", "rollout", "train", "--config", config, "--run-dir", Path.Combine(dir, "r"), "--port", $"{rp}",
            "--seed-nodes", $"akka.tcp://scst@127.0.0.1:{lp}", "--hocon", hocon, "--fast-failure");
        await learner.ExpectExit(0, Run, "finish the run");
        await rollout.ExpectExit(0, TimeSpan.FromSeconds(30), "exit after the run");

        Assert.Contains(rollout.Lines, l => l.Contains("rollout devices: cpu:0, cpu:1"));
        foreach (var (actor, device) in new[] { ("rollout-0", "cpu:0"), ("rollout-1", "cpu:1") })
            Assert.Single(rollout.Lines, l => l.Contains($"{actor}: on {device}, model held ") && l.Contains("frozen"));
        var byDevice = TinyScstRun.Summary(learnerDir).GetProperty("rollouts_by_device");
        output.WriteLine(byDevice.GetRawText());
        foreach (var device in new[] { "cpu:0", "cpu:1" })
            Assert.True(byDevice.TryGetProperty($"{node} {device}", out var n) && n.GetInt64() > 0, $"{device} served rollouts");
        var delta = TinyScstRun.MaxWeightDelta(plain, learnerDir);
        Assert.True(delta <= 1e-6, $"weights differ by {delta}");
    }
}
