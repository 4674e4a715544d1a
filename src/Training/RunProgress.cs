using System.Text.Json.Nodes;
using Scst.Training.Configuration;

namespace Scst.Training;

/// <summary>
/// Where a run stands: updates applied, samples consumed, the data cursor (epoch, position), the best validation value
/// with its update and the evaluations since (patience), and the training time so far. Checkpoints carry it as JSON
/// (<see cref="ToJson"/>); a resumed run continues from <see cref="FromJson"/>.
/// </summary>
/// <param name="Mode">"ce" or "scst".</param>
/// <param name="SampleUnit">What the cursor position counts: "caption" (CE's annotations) or "image".</param>
public sealed record RunProgress(
    string Mode,
    string SampleUnit,
    long Update,
    long Samples,
    int Epoch,
    int Position,
    double BestValue,
    long BestStep,
    long SinceBest,
    double ElapsedS)
{
    public static RunProgress Start(string mode, string sampleUnit) => new(mode, sampleUnit, 0, 0, 0, 0, double.NegativeInfinity, -1, 0, 0);

    /// <summary>After update <paramref name="update"/> with the cursor where it stands.</summary>
    public RunProgress After(long update, long samples, DataCursor cursor) =>
        this with { Update = update, Samples = samples, Epoch = cursor.Epoch, Position = cursor.Position };

    /// <summary>The trainer-state keys of a checkpoint (the run's seed, best metric and runner beside them, for the checks of <see cref="FromJson"/>).</summary>
    public JsonObject ToJson(RunOptions run) => new()
    {
        ["mode"] = Mode,
        ["step"] = Update,
        ["samples_consumed"] = Samples,
        ["epoch"] = Epoch,
        ["position"] = Position,
        ["best_metric"] = run.BestMetric,
        ["best_val_metric"] = double.IsFinite(BestValue) ? BestValue : null,
        ["best_step"] = BestStep,
        ["sample_unit"] = SampleUnit,
        ["runner"] = run.Runner,
        ["evals_since_best"] = SinceBest,
        ["elapsed_s"] = ElapsedS,
    };

    /// <summary>
    /// The progress a checkpoint records, refusing one that cannot continue under this config: another mode, a cursor
    /// counting other samples, another runner (the cursor's batches would differ) or another best metric.
    /// </summary>
    public static RunProgress FromJson(JsonObject state, string file, RunOptions run, string mode, string sampleUnit)
    {
        if (state["mode"]?.GetValue<string>() is { } m && m != mode)
            throw new InvalidDataException($"{file}: the run directory holds a {m} run, but the config is {mode}; use another --run-dir");
        var unit = state["sample_unit"]?.GetValue<string>() ?? "image";
        if (unit != sampleUnit)
            throw new InvalidDataException($"{file}: the run's data cursor counts {unit}s, but run.ce_sample_unit makes it count {sampleUnit}s; set ce_sample_unit: {unit} to resume, or use another --run-dir");
        var runner = state["runner"]?.GetValue<string>();
        if (runner != run.Runner)
            throw new InvalidDataException($"{file}: the run was trained with run.runner {runner ?? "(absent)"}, the config says {run.Runner ?? "(absent)"}; set it back to resume, or use another --run-dir");
        var metric = state["best_metric"]?.GetValue<string>() ?? "CIDEr"; // written before run.best_metric existed: CIDEr-D
        if (metric != run.BestMetric)
            throw new InvalidDataException($"{file}: the run picked its best checkpoint by {metric}, but run.best_metric is {run.BestMetric}; set best_metric: {metric} to resume, or use another --run-dir");
        return new RunProgress(mode, sampleUnit,
            Update: state["step"]!.GetValue<long>(),
            Samples: state["samples_consumed"]!.GetValue<long>(),
            Epoch: state["epoch"]!.GetValue<int>(),
            Position: state["position"]!.GetValue<int>(),
            BestValue: (state["best_val_metric"] ?? state["best_val_cider"])?.GetValue<double>() ?? double.NegativeInfinity,
            BestStep: state["best_step"]?.GetValue<long>() ?? -1,
            SinceBest: state["evals_since_best"]?.GetValue<long>() ?? 0,
            ElapsedS: state["elapsed_s"]?.GetValue<double>() ?? 0);
    }
}
