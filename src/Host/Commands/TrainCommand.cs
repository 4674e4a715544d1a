using System.CommandLine;
using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;
using Scst.Training;
using Scst.Host.Configuration;
using Scst.Host.Reporting;

namespace Scst.Host.Commands;

/// <summary><c>train --config FILE [--run-dir DIR] [--resume]</c>: CE or SCST (as the config says), writing summary.json.</summary>
public static class TrainCommand
{
    public static readonly Option<bool> Resume = new("--resume") { Description = "Continue the run in --run-dir from its latest checkpoint" };
    public static readonly Option<int?> StopAfter = new("--stop-after")
    {
        Description = "Stop (with a checkpoint) once this many updates are done, as an interruption would; --resume continues",
    };

    public static readonly Option<bool> FastFailure = new("--fast-failure")
    {
        Description = "With --role: detect dead nodes in seconds (hocon/fast-failure.conf); for tests and chaos runs",
    };

    public static Command Create()
    {
        var cmd = new Command("train", "Train a captioner: cross-entropy, or SCST when the config has an scst section") { Resume, StopAfter, FastFailure };
        GlobalOptions.AddCluster(cmd);
        GlobalOptions.AddMetrics(cmd);
        cmd.SetAction(Execute);
        return cmd;
    }

    /// <summary>The train action; also what <c>Scst.Host.dll --role R --config FILE</c> runs with no command.</summary>
    public static Task<int> Execute(ParseResult r, CancellationToken ct)
    {
        {
            var configFile = r.GetValue(GlobalOptions.Config);
            if (configFile is null)
            {
                Console.Error.WriteLine("train: --config FILE is required");
                return Task.FromResult(2);
            }
            ScstConfig config;
            try { config = ConfigLoader.Load(configFile.FullName); }
            catch (ConfigException e) { Console.Error.WriteLine(e.Message); return Task.FromResult(2); }
            var runDir = r.GetValue(GlobalOptions.RunDir)?.FullName ?? Path.GetFullPath(config.Run.OutputDir);
            // An explicit --role runs the actor system (learner / rollout / reward / all); without it, the plain trainer.
            if (r.GetResult(GlobalOptions.Role) is { Implicit: false })
            {
                if (!config.IsScst) { Console.Error.WriteLine("train --role: the actor system runs SCST; train CE without --role"); return Task.FromResult(2); }
                var node = NodeCommand.OptionsFrom(r) with { RunDir = runDir, FastFailure = r.GetValue(FastFailure) };
                return Scst.Host.Cluster.ClusterTraining.RunAsync(config, node, r.GetValue(StopAfter), ct, configFile.FullName);
            }
            // Run logged the one-line reason (console and run log); the final checkpoint is written, --resume continues.
            try { return Task.FromResult(Run(config, new TrainerOptions(runDir, r.GetValue(Resume), r.GetValue(StopAfter))) is null ? 1 : 0); }
            catch (NonfiniteUpdatesException) { return Task.FromResult(2); }
        }
    }

    /// <summary>Runs a training job with the standard outputs (metrics.jsonl, TensorBoard, plots, summary.json).</summary>
    public static TrainSummary? Run(ScstConfig config, TrainerOptions options, string title = "train")
    {
        // Everything this run logs also goes to RUN_DIR/logs/TITLE.log (appended across resumes).
        using var loggers = HostLogging.Create(logFile: HostLogging.RunLogFile(options.RunDir, title));
        var log = loggers.CreateLogger("train");
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            log.LogWarning("Interrupted: finishing the current update and writing a checkpoint (Ctrl+C again to abort)");
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            Directory.CreateDirectory(options.RunDir);
            var metricsFile = Path.Combine(options.RunDir, "metrics.jsonl");
            using var sink = new CompositeMetricsSink(new JsonlMetricsSink(metricsFile), new TensorBoardSink(Path.Combine(options.RunDir, "tensorboard")));
            using var trainer = new CaptionTrainer(config, options, sink, log);
            var summary = TrainingConsole.WithProgress(title, log, progress =>
            {
                trainer.Progress = progress;
                return trainer.Run(cancel.Token);
            });
            var plots = PlotWriter.Write(metricsFile, Path.Combine(options.RunDir, "plots"));
            if (summary.Metrics.Count > 0) TrainingConsole.PrintMetrics($"{summary.Mode} ({summary.Updates} updates)", summary.Metrics);
            log.LogInformation("{Mode}: {Updates} updates, {Samples} samples in {Elapsed:F0} s; summary {Summary}; plots {Plots}",
                summary.Mode, summary.Updates, summary.SamplesConsumed, summary.ElapsedS, Path.Combine(options.RunDir, "summary.json"), string.Join(", ", plots.Select(Path.GetFileName)));
            return summary;
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or InvalidOperationException
                                       or Scst.Model.Data.DatasetFormatException or Scst.Model.Data.MissingImagesException)
        {
            log.LogError("{Message}", e.Message);
            return null;
        }
        catch (NonfiniteUpdatesException e)
        {
            log.LogError("{Message}", e.Message);
            throw;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}
