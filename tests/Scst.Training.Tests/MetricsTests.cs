using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging.Abstractions;
using Scst.Training.Telemetry;
using Scst.Training;

namespace Scst.Training.Tests;

/// <summary>The "Scst" meter reports what the plain trainer logs to metrics.jsonl, read back with a MeterListener.</summary>
public class MetricsTests(TinyShapes shapes) : IClassFixture<TinyShapes>
{
    sealed record Reading(string Instrument, double Value, string? Mode);

    [Fact]
    public void Plain_scst_run_reports_updates_samples_reward_baseline_and_policy_version()
    {
        var ceDir = shapes.RunDir("metrics-ce");
        TinyShapes.Train(shapes.Ce(iters: 3), new TrainerOptions(ceDir));

        var readings = new ConcurrentQueue<Reading>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == ScstMetrics.MeterName) l.EnableMeasurementEvents(instrument); };
        static string? Mode(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var t in tags) if (t.Key == "mode") return t.Value as string;
            return null;
        }
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => readings.Enqueue(new(i.Name, v, Mode(tags))));
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) => readings.Enqueue(new(i.Name, v, Mode(tags))));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => readings.Enqueue(new(i.Name, v, Mode(tags))));
        listener.Start();

        var sink = new TinyShapes.NullSink();
        using (var t = new CaptionTrainer(shapes.Scst(Path.Combine(ceDir, "checkpoints", "best.json"), iters: 2), new TrainerOptions(shapes.RunDir("metrics-scst")), sink, NullLogger.Instance))
            t.Run();
        listener.RecordObservableInstruments();

        var rows = sink.Rows.Where(r => r.Phase == "scst").ToList();
        Assert.Equal(2, rows.Count);
        // Other tests of this assembly may train in parallel and report to the same static meter: look for this run's
        // values rather than exact totals.
        Assert.True(readings.Count(r => r.Instrument == "scst.updates" && r.Mode == "scst") >= 2);
        Assert.True(readings.Where(r => r.Instrument == "scst.samples" && r.Mode == "scst").Sum(r => r.Value) >= 2 * 4, "2 updates × batch 4");
        foreach (var row in rows)
        {
            Assert.Contains(readings, r => r.Instrument == "scst.reward" && r.Mode == "scst" && r.Value == row.Values["reward_mean"]);
            Assert.Contains(readings, r => r.Instrument == "scst.baseline" && r.Mode == "scst" && r.Value == row.Values["baseline_mean"]);
        }
        Assert.Contains(readings, r => r.Instrument == "scst.policy.version" && r.Value >= 1);
    }

    [Fact]
    public void Learner_gauges_report_only_once_set()
    {
        var readings = new ConcurrentQueue<(string Name, long Value, string? State)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Name == "scst.learner.pending_rollouts") l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) =>
        {
            string? state = null;
            foreach (var t in tags) if (t.Key == "state") state = t.Value as string;
            readings.Enqueue((i.Name, v, state));
        });
        listener.Start();
        ScstMetrics.SetQueueDepths(queued: 3, inFlight: 2, scored: 1);
        listener.RecordObservableInstruments();
        Assert.Contains(readings, r => r.State == "queued");
        Assert.Contains(readings, r => r.State == "in_flight");
        Assert.Contains(readings, r => r.State == "scored");
    }
}
