using System.Diagnostics;
using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

/// <summary>
/// 50 short SCST runs, each a real Scst.Host process (every tenth the actor learner, <c>--role all</c>), under a
/// garbage collector told to collect very often: a TorchSharp Scalar finalized while a native call reads it (the
/// scalar-lifetime crash, once 1 run in 8 of 200 tiny updates) would kill a process or corrupt its weights. Every run
/// must exit 0 and end with the first run's weights, bit for bit.
/// </summary>
[Trait("Category", "Stress")]
public class ScstStressTests(ITestOutputHelper output)
{
    const int Runs = 50;
    static readonly TimeSpan PerRun = TimeSpan.FromSeconds(150);

    // gen0 budget of 256 KB (hex) instead of megabytes: a collection every few hundred allocations, so any Scalar
    // left unreferenced during a native call is far more likely to be finalized right then.
    static readonly Dictionary<string, string> GcPressure = new() { ["DOTNET_GCgen0size"] = "40000" };

    [Fact]
    public async Task Fifty_short_scst_runs_under_gc_pressure_exit_cleanly_with_identical_weights()
    {
        var dir = TinyScstRun.NewDir("stress");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 4, checkpointEvery: 4, evalEvery: 4);
        var clock = Stopwatch.StartNew();
        string? first = null;
        for (var i = 0; i < Runs; i++)
        {
            var run = Path.Combine(dir, $"run-{i:D2}");
            string[] args = i % 10 == 9 ? ["--role", "all", "train", "--config", config, "--run-dir", run] : ["train", "--config", config, "--run-dir", run];
            using (var p = HostProcess.StartWithEnvironment($"run {i}", GcPressure, args))
                await p.ExpectExit(0, PerRun, $"finish stress run {i}"); // a native crash exits 134 (abort) or 139 (segfault)
            if (first is null) { first = run; continue; }
            var delta = TinyScstRun.MaxWeightDelta(first, run);
            Assert.True(delta == 0, $"run {i} ({string.Join(' ', args.Take(3))}) ended with other weights than run 0: max |Δ| {delta}");
            Directory.Delete(run, recursive: true);
        }
        output.WriteLine($"{Runs} runs in {clock.Elapsed.TotalSeconds:F0} s");
    }
}
