using Scst.Model.Generation;
using Scst.Reward;
using Scst.Training.Configuration;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>
/// What a rollout worker holds: the policy in eval mode, the training images and a sampler. It draws K captions per
/// image (<c>scst.sampling</c>: beams or samples, <c>scst.temperature/top_k/top_p</c>, the run's max/min length) and,
/// for the greedy baseline, the greedy caption. The plain trainer and the actor learner's replay use the same object,
/// so every rollout of a run, wherever generated, is the same function of (weights, images, seed).
/// </summary>
public sealed class RolloutGenerator(Policy policy, CaptionSplit train, ScstConfig config) : IDisposable
{
    private readonly Generator _sampling = new((ulong)config.Run.Seed, policy.Device);

    public Policy Policy => policy;
    public BaselineKind Baseline => config.Scst.Baseline;

    /// <summary>Each update samples from its own seed, so a resumed run draws exactly what an uninterrupted one would.</summary>
    public static ulong SamplingSeed(int runSeed, long update, int micro) =>
        (ulong)runSeed * 1_000_003UL + (ulong)update * 7919UL + (ulong)micro;

    /// <summary>
    /// A micro-batch cut into min(splits, images) contiguous parts; part 0 keeps the micro-batch's seed (so one part is
    /// the unsplit rollout) and part p draws from a seed mixed from it and p.
    /// </summary>
    public static IReadOnlyList<(int[] Ids, ulong Seed)> Parts(int[] batch, ulong samplingSeed, int splits)
    {
        var n = Math.Max(1, Math.Min(splits, batch.Length));
        var parts = new List<(int[], ulong)>(n);
        for (var p = 0; p < n; p++)
        {
            int from = batch.Length * p / n, to = batch.Length * (p + 1) / n;
            parts.Add((batch[from..to], p == 0 ? samplingSeed : (samplingSeed ^ ((ulong)p * 0x9E3779B97F4A7C15UL)) * 0xBF58476D1CE4E5B9UL));
        }
        return parts;
    }

    /// <summary>
    /// K captions per image of a micro-batch. With <c>scst.rollout_splits</c> = S it is generated as the S
    /// <see cref="Parts"/>, each from its own seed, and concatenated: exactly what a sync learner gets back from S rollout
    /// workers given one part each.
    /// </summary>
    public RolloutBatch Generate(int[] batch, long policyVersion, ulong samplingSeed)
    {
        var parts = Parts(batch, samplingSeed, config.Scst.RolloutSplits);
        if (parts.Count == 1) return GeneratePart(batch, policyVersion, samplingSeed);
        return RolloutBatch.Concat([.. parts.Select(p => GeneratePart(p.Ids, policyVersion, p.Seed))], policy.Tokenizer.PadId);
    }

    /// <summary>One generation call: K captions for each image of <paramref name="batch"/> from <paramref name="samplingSeed"/>.</summary>
    public RolloutBatch GeneratePart(int[] batch, long policyVersion, ulong samplingSeed)
    {
        using var scope = NewDisposeScope();
        var s = config.Scst;
        policy.Model.eval();
        _sampling.manual_seed((long)samplingSeed);
        var pixels = train.Pixels(batch, policy.Device);
        using var gen = policy.Generate(pixels, new GenerationOptions
        {
            NumBeams = s.Sampling == RolloutSampling.Beam ? s.K : 1,
            NumReturnSequences = s.K,
            DoSample = s.Sampling == RolloutSampling.Sample,
            Temperature = s.Temperature, TopK = s.TopK, TopP = s.TopP,
            // Rollouts keep the model's own distribution apart from the scst section's warpers: no repetition penalty.
            MaxNewTokens = config.Run.MaxLen, MinLength = config.Run.MinLen,
            Generator = _sampling,
        });
        var seqs = gen.Sequences.cpu();
        var n = (int)seqs.shape[0];
        var len = (int)seqs.shape[1];
        var flat = seqs.data<long>().ToArray();
        var sequences = Enumerable.Range(0, n).Select(i => flat.AsSpan(i * len, len).ToArray()).ToArray();
        var mask = gen.TokenMask.to(ScalarType.Float32);
        var behaviour = (gen.TokenLogProbs * mask).sum(1).cpu().data<float>().ToArray();
        var lengths = mask.sum(1).to(ScalarType.Int32).cpu().data<int>().ToArray();
        return new RolloutBatch(batch, s.K, sequences, policy.Decode(gen.Sequences), behaviour, lengths, policyVersion);
    }

    /// <summary>Greedy captions of training images with the current weights (the greedy baseline of Rennie et al.); null for other baselines.</summary>
    public string[]? GreedyCaptions(int[] batch)
    {
        if (Baseline != BaselineKind.Greedy) return null;
        using var scope = NewDisposeScope();
        policy.Model.eval();
        var pixels = train.Pixels(batch, policy.Device);
        using var g = policy.Generate(pixels, EvaluationDecoding.Greedy(config.Run));
        return policy.Decode(g.Sequences);
    }

    public void Dispose() => _sampling.Dispose();
}
