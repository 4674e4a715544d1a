using Scst.Model.Generation;
using Scst.Reward;
using Scst.Training.Configuration;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>
/// What a rollout worker holds: the policy in eval mode and the training images. It draws K captions per image
/// (<c>scst.sampling</c>: beams or samples, <c>scst.temperature/top_k/top_p</c>, the run's max/min length) and, for the
/// greedy baseline, the greedy caption. Sampled rows are keyed by (micro-batch seed, image, sample index)
/// (<see cref="Keys"/>), so every rollout of a run, wherever generated and however its micro-batch was cut into parts,
/// is the same function of (weights, image, seed). The plain trainer and the actor learner's replay use the same object.
/// </summary>
public sealed class RolloutGenerator(Policy policy, CaptionSplit train, ScstConfig config)
{
    public Policy Policy => policy;
    public BaselineKind Baseline => config.Scst.Baseline;

    /// <summary>Each update samples from its own seed, so a resumed run draws exactly what an uninterrupted one would.</summary>
    public static ulong SamplingSeed(int runSeed, long update, int micro) =>
        (ulong)runSeed * 1_000_003UL + (ulong)update * 7919UL + (ulong)micro;

    /// <summary>
    /// The sampling keys of <paramref name="images"/> × <paramref name="k"/> rows (row i·k + j: image i's j-th sample) under
    /// a micro-batch's <paramref name="seed"/>: a function of (seed, image id, j) alone, so any subset of the micro-batch
    /// gets the keys its rows have in the whole.
    /// </summary>
    public static ulong[] Keys(int[] images, int k, ulong seed)
    {
        var keys = new ulong[images.Length * k];
        var s = KeyedSampling.Mix(seed + KeyedSampling.Gamma);
        for (var i = 0; i < images.Length; i++)
        {
            var image = KeyedSampling.Mix(s ^ (uint)images[i]);
            for (var j = 0; j < k; j++) keys[i * k + j] = KeyedSampling.Mix(image + (ulong)(j + 1) * KeyedSampling.Gamma);
        }
        return keys;
    }

    /// <summary>
    /// K captions for each image of <paramref name="batch"/> in one generation call: a whole micro-batch, or any subset
    /// of one (in any order) whose seed is <paramref name="samplingSeed"/> — each row is the row its image has in the
    /// whole micro-batch's rollout.
    /// </summary>
    public RolloutBatch Generate(int[] batch, long policyVersion, ulong samplingSeed)
    {
        using var scope = NewDisposeScope();
        var s = config.Scst;
        policy.Model.eval();
        var pixels = train.Pixels(batch, policy.Device);
        var sample = s.Sampling == RolloutSampling.Sample;
        using var gen = policy.Generate(pixels, new GenerationOptions
        {
            NumBeams = sample ? 1 : s.K,
            NumReturnSequences = s.K,
            DoSample = sample,
            Temperature = s.Temperature, TopK = s.TopK, TopP = s.TopP,
            // Rollouts keep the model's own distribution apart from the scst section's warpers: no repetition penalty.
            MaxNewTokens = config.Run.MaxLen, MinLength = config.Run.MinLen,
            SampleKeys = sample ? Keys(batch, s.K, samplingSeed) : null,
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
}
