using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;

namespace Scst.Training;

/// <summary>
/// Validation and test during and after training: decodes a split with the run's evaluation settings and scores it
/// with coco-caption's metrics plus LAVIS's <c>agg_metrics</c>; keeps the best validation value (<c>run.best_metric</c>)
/// and stops early after <c>run.early_stop_patience</c> evaluations without improvement.
/// </summary>
public sealed class Evaluator(ScstConfig config, Policy policy, CaptionCorpus corpus, IMetricsSink metrics, ILogger log)
{
    /// <summary>Called after every evaluation batch (progress bars).</summary>
    public Action<TrainingProgress>? Progress { get; set; }

    public Dictionary<string, double> Evaluate(CaptionSplit split, int? maxImages)
    {
        var r = SplitEvaluator.Evaluate(policy, split, config.Run, maxImages,
            (done, total) => Progress?.Invoke(new TrainingProgress($"eval:{split.Name}", done, total, new Dictionary<string, double>())));
        // LAVIS's captioning task reports agg_metrics = CIDEr + Bleu_4 beside coco-caption's metrics.
        return new Dictionary<string, double>(r.Metrics) { ["agg_metrics"] = r.Metrics["CIDEr"] + r.Metrics["Bleu_4"] };
    }

    /// <summary>True when update <paramref name="update"/> (1-based count of updates applied) ends with a validation.</summary>
    public bool Due(long update, long totalUpdates) => update % config.Run.EvalEvery == 0 || update == totalUpdates;

    /// <summary>
    /// Validates after <paramref name="p"/>'s update: the new progress (best value, its update, evaluations since),
    /// whether this is the new best (save it) and whether patience ran out.
    /// </summary>
    public (RunProgress Progress, bool Improved, bool StopEarly) Validate(RunProgress p)
    {
        var run = config.Run;
        var val = Evaluate(corpus.Val, run.EvalMaxImages);
        metrics.Log("val", p.Update, val);
        var value = val[run.BestMetric];
        bool improved = false, stop = false;
        if (value > p.BestValue)
        {
            p = p with { BestValue = value, BestStep = p.Update, SinceBest = 0 };
            improved = true;
        }
        else if (run.EarlyStopPatience > 0)
        {
            p = p with { SinceBest = p.SinceBest + 1 };
            if (p.SinceBest >= run.EarlyStopPatience)
            {
                log.LogInformation("Validation {Metric} has not improved for {N} evaluations (best {Best:F4} at update {Step}); stopping", run.BestMetric, p.SinceBest, p.BestValue, p.BestStep);
                stop = true;
            }
        }
        log.LogInformation("update {Update}: val {Metric} {Value:F4} (best {Best:F4} at {BestStep}), CIDEr-D {Cider:F4}", p.Update, run.BestMetric, value, p.BestValue, p.BestStep, val["CIDEr"]);
        return (p, improved, stop);
    }

    /// <summary>The end of a run: val and test with the weights now in the policy (the caller loads the best first).</summary>
    public Dictionary<string, IReadOnlyDictionary<string, double>> Final(long update)
    {
        var result = new Dictionary<string, IReadOnlyDictionary<string, double>>
        {
            ["val"] = Evaluate(corpus.Val, null),
            ["test"] = Evaluate(corpus.Test, null),
        };
        metrics.Log("test", update, result["test"]);
        return result;
    }
}
