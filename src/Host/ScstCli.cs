using System.CommandLine;
using System.CommandLine.Invocation;
using Scst.Host.Commands;

namespace Scst.Host;

/// <summary>
/// The command line: the command tree (<see cref="BuildRoot"/>, which tests walk so no command escapes the error
/// policy) and its invocation under <see cref="CommandErrors"/>: every exception a command lets out becomes one line
/// and an exit code; bad arguments exit 2 like every other user error.
/// </summary>
public static class ScstCli
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Scst.Actors: self-critical sequence training of BLIP-2/T5 captioners on Akka.NET and TorchSharp");
        GlobalOptions.AddTo(root);
        // Each command group lives in Commands/<Name>Command.cs.
        Command[] commands =
        [
            ConfigCommand.Create(), DataCommand.Create(), ScoreCommand.Create(), BenchCommand.Create(), TrainCommand.Create(), DemoCommand.Create(),
            EvalCommand.Create(), ModelCommand.Create(), NodeCommand.Create(), StatusCommand.Create(), TlsCommand.Create(),
        ];
        foreach (var command in commands) root.Subcommands.Add(command);
        // `Scst.Host.dll --role learner --config FILE` (no command) trains, as the design card promises; without a config, help.
        root.SetAction((r, ct) =>
        {
            if (r.GetValue(GlobalOptions.Config) is not null) return TrainCommand.Execute(r, ct);
            Console.Error.WriteLine("error: no command given. Run with --help to list the commands, or pass --config FILE to train.");
            return Task.FromResult(CommandErrors.UserError);
        });
        return root;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        // Exceptions on threads we do not own (actors, timers) end the process too: with one line, not the runtime's dump.
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            if (e.ExceptionObject is not Exception x) return;
            Console.Out.Flush();
            Environment.Exit(CommandErrors.Report(x, string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')).DefaultIfEmpty("scst"))));
        };
        var parsed = BuildRoot().Parse(args);
        var name = CommandName(parsed);
        if (parsed.Action is ParseErrorAction)
        {
            foreach (var error in parsed.Errors) Console.Error.WriteLine($"error: {error.Message}");
            Console.Error.WriteLine($"Run '{name} --help' for its options.");
            return CommandErrors.UserError;
        }
        HostLogging.Verbose |= parsed.GetValue(GlobalOptions.Verbose);
        // The Prometheus endpoint lives as long as the command; off unless a port is given.
        OpenTelemetry.Metrics.MeterProvider? metrics;
        try { metrics = Telemetry.MetricsEndpoint.Requested(parsed) is { } m ? Telemetry.MetricsEndpoint.Start(m.Host, m.Port) : null; }
        catch (Exception e) when (e is ArgumentException or System.Net.HttpListenerException or InvalidOperationException)
        {
            var port = parsed.GetValue(GlobalOptions.MetricsPort)?.ToString() ?? Environment.GetEnvironmentVariable(Telemetry.MetricsEndpoint.PortVariable);
            Console.Error.WriteLine($"error: metrics endpoint on port {port}: {e.Message} (is the port in use? choose another --metrics-port, or leave it off)");
            return CommandErrors.UserError;
        }
        try
        {
            // The first Ctrl-C / SIGTERM cancels the command's token (StopSignals), a second exits at once.
            using var signals = StopSignals.Install();
            using (metrics)
                return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false }, StopSignals.Token);
        }
        catch (Exception e)
        {
            Console.Out.Flush();
            return CommandErrors.Report(e, name);
        }
    }

    /// <summary>"Scst.Host train", "Scst.Host model check": the command path as typed.</summary>
    static string CommandName(ParseResult parsed)
    {
        var names = new List<string>();
        for (var c = parsed.CommandResult; c is not null; c = c.Parent as System.CommandLine.Parsing.CommandResult)
            names.Insert(0, c.Command is RootCommand ? "Scst.Host" : c.Command.Name);
        return string.Join(' ', names);
    }
}
