using System.CommandLine;
using Scst.Host;
using Scst.Host.Commands;

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
    Console.Error.WriteLine("No command given. Run with --help to list the commands, or pass --config FILE to train.");
    return Task.FromResult(1);
});
var parsed = root.Parse(args);
HostLogging.Verbose |= parsed.GetValue(GlobalOptions.Verbose);
// The Prometheus endpoint lives as long as the command; off unless a port is given.
OpenTelemetry.Metrics.MeterProvider? metrics;
try { metrics = Scst.Host.Telemetry.MetricsEndpoint.Requested(parsed) is { } m ? Scst.Host.Telemetry.MetricsEndpoint.Start(m.Host, m.Port) : null; }
catch (Exception e) when (e is ArgumentException or System.Net.HttpListenerException or InvalidOperationException)
{
    Console.Error.WriteLine($"error: metrics endpoint: {e.Message}");
    return 2;
}
// The first Ctrl-C / SIGTERM cancels the command's token (StopSignals), a second exits at once.
using var signals = StopSignals.Install();
using (metrics) return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, StopSignals.Token);
