using System.CommandLine;
using Scst.Host.Commands.Bench;

namespace Scst.Host.Commands;

/// <summary><c>bench</c>: throughput measurements; one subcommand per subsystem, each in Commands/Bench/.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Measure throughput of the reward, generation, learner and actor pipelines, the weight plane and the tokenizer; soak a long run for leaks");
        foreach (var bench in new[] { BenchRewardCommand.Create(), BenchGenerateCommand.Create(), BenchLearnerCommand.Create(), BenchActorsCommand.Create(), BenchSoakCommand.Create(), BenchSeedScaleCommand.Create(), BenchTokenizeCommand.Create(), BenchWeightsCommand.Create() })
            cmd.Subcommands.Add(bench);
        return cmd;
    }
}
