using System.CommandLine;
using Scst.Host.Commands.Bench;

namespace Scst.Host.Commands;

/// <summary><c>bench</c>: throughput measurements; one subcommand per subsystem, each in Commands/Bench/.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Measure throughput of the reward, generation, learner and actor pipelines and of the tokenizer");
        cmd.Subcommands.Add(BenchRewardCommand.Create());
        cmd.Subcommands.Add(BenchGenerateCommand.Create());
        cmd.Subcommands.Add(BenchLearnerCommand.Create());
        cmd.Subcommands.Add(BenchActorsCommand.Create());
        cmd.Subcommands.Add(BenchSeedScaleCommand.Create());
        cmd.Subcommands.Add(BenchTokenizeCommand.Create());
        return cmd;
    }
}
