using Scst.Training.Configuration;
using Scst.Reward;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>Decodes a split and scores it with coco-caption's metrics (BLEU-1..4, ROUGE-L, CIDEr-D).</summary>
public static class SplitEvaluator
{
    public sealed record Result(IReadOnlyDictionary<string, double> Metrics, IReadOnlyList<(string ImageId, string Caption)> Captions);

    /// <summary>Decodes with the run section's evaluation settings (<see cref="EvaluationDecoding"/>); nucleus sampling restarts from the run's seed each call.</summary>
    public static Result Evaluate(Policy policy, CaptionSplit split, RunOptions run, int? maxImages = null, Action<int, int>? progress = null)
    {
        var n = Math.Min(split.Count, maxImages ?? int.MaxValue);
        var batchSize = run.BatchSizeEval;
        using var sampling = EvaluationDecoding.SamplingGenerator(run, policy.Device);
        var decoding = EvaluationDecoding.Options(run, sampling);
        var captions = new string[n];
        var wasTraining = policy.Model.training;
        policy.Model.eval();
        try
        {
            for (var start = 0; start < n; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var idx = Enumerable.Range(start, Math.Min(batchSize, n - start)).ToArray();
                var pixels = split.Pixels(idx, policy.Device);
                using var r = policy.Generate(pixels, decoding);
                var text = policy.Decode(r.Sequences);
                for (var k = 0; k < idx.Length; k++) captions[idx[k]] = text[k];
                progress?.Invoke(start + idx.Length, n);
            }
        }
        finally
        {
            if (wasTraining) policy.Model.train();
        }
        var samples = Enumerable.Range(0, n)
            .Select(i => new CaptionSample(split.Images[i].ImageId, split.Images[i].Captions, captions[i]))
            .ToList();
        var eval = CaptionEvaluator.Evaluate(samples, new EvaluationOptions { Tokenize = true, DegreeOfParallelism = Environment.ProcessorCount });
        return new Result(eval.Corpus, samples.Select(s => (s.ImageId, s.Candidate)).ToList());
    }
}
