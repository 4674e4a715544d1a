using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;

namespace Scst.Training;

/// <summary>How a run is driven: where it writes, whether it resumes, and (for tests and drills) where it stops early.</summary>
public sealed record TrainerOptions(string RunDir, bool Resume = false, int? StopAfterUpdates = null);

/// <summary>
/// The plain trainer: one process, no actors. Cross-entropy pre-training, or SCST fine-tuning from a CE checkpoint:
/// each update is one <see cref="CeUpdate"/> or <see cref="ScstUpdate"/> over <c>accum_grad_iters</c> micro-batches from
/// the data cursor, followed by what the <see cref="Learner"/> does after every update (validation, checkpoints).
/// </summary>
public sealed class CaptionTrainer(ScstConfig config, TrainerOptions options, IMetricsSink metrics, ILogger log, Action<TrainingProgress>? progress = null) : IDisposable
{
    public Learner Learner { get; } = Learner.Create(config, options.RunDir, metrics, log);

    /// <summary>Called after every update and evaluation batch (progress bars).</summary>
    public Action<TrainingProgress>? Progress { get; set; } = progress;

    public TrainSummary Run(CancellationToken cancellation = default)
    {
        var core = Learner;
        core.Evaluator.Progress = p => Progress?.Invoke(p);
        var p = core.Start();
        var nonfinite = new NonfiniteGuard(config.Run.MaxNonfinite);
        if (options.Resume && core.Checkpoints.Find("latest") is not null)
        {
            (p, var state, var file) = core.Restore("latest");
            nonfinite.Skipped = state[NonfiniteGuard.MetricKey]?.GetValue<long>() ?? 0;
            log.LogInformation("Resumed {Mode} at update {Update} (epoch {Epoch}, position {Pos}) from {File}", p.Mode, p.Update, p.Epoch, p.Position, file);
        }
        else if (core.Checkpoints.Find("latest") is not null)
            throw new InvalidOperationException($"{options.RunDir} already holds a run; pass --resume to continue it, or choose another --run-dir");

        var cursor = core.Cursor(p);
        bool stopped = false, stopEarly = false;
        while (p.Update < core.TotalUpdates && !stopEarly)
        {
            if (cancellation.IsCancellationRequested || (options.StopAfterUpdates is int s && p.Update >= s)) { stopped = true; break; }
            var samples = p.Samples;
            Dictionary<string, double> values;
            if (core.Scst is { } scst)
            {
                var batches = NextBatches(core, p.Update, cursor, ref samples);
                values = scst.RunLocal(p.Update, cursor.Epoch, batches, core.Rollouts!, core.Reward!);
            }
            else values = core.Ce!.Run(p.Update, cursor, core.Optimization, ref samples);
            values["epoch"] = cursor.Epoch;
            var consumed = samples - p.Samples;
            p = p.After(p.Update + 1, samples, cursor);
            // A skipped update still counts: the cursor, schedule and seeds moved on (a resumed run repeats it exactly).
            nonfinite.Count(p.Update, core.Optimization.LastSkip, values, log);
            metrics.Log(p.Mode, p.Update, values);
            core.LogUpdate(p.Update, values);
            Telemetry.ScstMetrics.RecordUpdate(p.Mode, consumed, p.Update, values);
            Progress?.Invoke(new TrainingProgress(p.Mode, p.Update, core.TotalUpdates, values));
            (p, stopEarly) = core.AfterUpdate(p, Counts(nonfinite));
            if (nonfinite.Exhausted(p.Update) is { } stop)
            {
                core.Finish(p, completed: false, Counts(nonfinite), Counts(nonfinite));
                throw stop;
            }
        }
        return core.Finish(p, completed: !stopped, Counts(nonfinite), Counts(nonfinite));
    }

    static System.Text.Json.Nodes.JsonObject Counts(NonfiniteGuard g) => new() { [NonfiniteGuard.MetricKey] = g.Skipped };

    // SCST's micro-batches of one update; the cursor's epoch after them is the update's data epoch.
    private static int[][] NextBatches(Learner core, long update, DataCursor cursor, ref long samples)
    {
        var batches = new int[core.Plan.MicroBatches(update)][];
        for (var m = 0; m < batches.Length; m++)
        {
            batches[m] = cursor.Next(core.Config.Run.BatchSizeTrain);
            samples += batches[m].Length;
        }
        return batches;
    }

    public void Dispose() => Learner.Dispose();
}
