using Scst.Model;
using Scst.Reward;
using Scst.Training.Configuration;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>One micro-batch's rollout with its rewards r(wˢ), advantages r(wˢ) − b and, for the greedy baseline, r(ŵ).</summary>
public sealed record ScoredRollout(RolloutBatch Rollout, double[] Rewards, double[] Advantages, double[]? GreedyRewards);

/// <summary>
/// One SCST update (Rennie et al. 2017, "Self-critical Sequence Training for Image Captioning"), the only one in the
/// code: the plain trainer, the actor learner and its journal replay all run it. Read top to bottom:
/// <list type="number">
/// <item>rollouts: K captions wˢ ~ p_θ(·|I) per image I (<see cref="RolloutGenerator"/>; in the cluster, rollout workers)</item>
/// <item>rewards: r(wˢ) = CIDEr-D(wˢ, references of I) (<see cref="CiderDReward"/>; in the cluster, reward workers)</item>
/// <item>advantages: Aˢ = r(wˢ) − b, b the baseline (<see cref="SelfCritical"/>: mean of K, leave-one-out, greedy r(ŵ))</item>
/// <item>importance weights (async SCST only): ρˢ = min(c, p_θ(wˢ) / μ(wˢ)), μ the policy that sampled wˢ</item>
/// <item>loss: L(θ) = −mean_s ρˢ·Aˢ·log p_θ(wˢ) (normalised per <c>scst.loss_normalization</c>; <see cref="ScstLoss"/>), backpropagated per micro-batch</item>
/// <item>step: one optimizer step over the update's micro-batches (<see cref="Optimization.Step"/>)</item>
/// </list>
/// Steps 1–3 are <see cref="Collect"/> when they run in this process; 4–6 are <see cref="Apply"/>.
/// </summary>
public sealed class ScstUpdate(ScstConfig config, Policy policy, CaptionSplit train, Optimization optimization)
{
    /// <summary>Steps 1–3 in this process, for one micro-batch: rollouts, rewards, advantages.</summary>
    public ScoredRollout Collect(RolloutGenerator rollouts, CiderDReward reward, int[] images, long policyVersion, ulong samplingSeed)
    {
        var rollout = rollouts.Generate(images, policyVersion, samplingSeed);                          // 1. wˢ ~ p_θ
        return Score(reward, rollout, rollouts.GreedyCaptions(images));
    }

    /// <summary>Steps 2–3: rewards of the rollout's captions (and of the greedy captions ŵ, for that baseline) and advantages.</summary>
    public ScoredRollout Score(CiderDReward reward, RolloutBatch rollout, string[]? greedyCaptions)
    {
        var refs = rollout.ImageIndices.Select(i => train.References[i]).ToList();
        var rewards = reward.Score(refs, rollout.Captions);                                            // 2. r(wˢ)
        var greedy = greedyCaptions is null ? null : reward.Score(refs, greedyCaptions);              //    r(ŵ)
        var advantages = SelfCritical.Advantages(config.Scst.Baseline, rewards, rollout.K, greedy);    // 3. Aˢ = r(wˢ) − b
        return new ScoredRollout(rollout, rewards, advantages, greedy);
    }

    /// <summary>
    /// Steps 4–6 for the update's micro-batches, then the optimizer step. <paramref name="offPolicy"/> (async SCST)
    /// weights each caption by the truncated ratio of the current policy to the one that sampled it
    /// (<c>scst.is_clip</c> = c); on-policy (sync) rollouts have ρ = 1 by construction and take no ratio.
    /// Returns the update's figures (micro-batch means), its learning rate and gradient norm.
    /// </summary>
    public Dictionary<string, double> Apply(long update, int dataEpoch, IReadOnlyList<ScoredRollout> microBatches, bool offPolicy)
    {
        var values = new Dictionary<string, double>();
        var importance = new List<double>();
        // A non-finite reward would make every gradient NaN: the update is skipped without a backward pass.
        var nonfinite = microBatches.Any(m => !m.Rewards.All(double.IsFinite) || !m.Advantages.All(double.IsFinite)) ? "reward" : null;
        var poison = FaultInjection.NonfiniteLossAt(update + 1);
        foreach (var m in microBatches)
        {
            if (nonfinite is null)
            {
                var (loss, rho) = Backward(m, offPolicy, poison);                                      // 4.–5.
                if (rho is not null) importance.AddRange(rho);
                Accumulate(values, "loss", loss, microBatches.Count);
            }
            foreach (var (k, v) in RolloutStats(m)) Accumulate(values, k, v, microBatches.Count);
        }
        if (nonfinite is null && !double.IsFinite(values["loss"])) nonfinite = "loss";
        var (lr, norm) = optimization.Step(update, dataEpoch, nonfinite);                              // 6. θ ← AdamW(θ, ∇L)
        values["lr"] = lr;
        if (!double.IsNaN(norm)) values["grad_norm"] = norm;
        if (importance.Count > 0)
        {
            values["is_weight_mean"] = importance.Average();
            values["is_weight_min"] = importance.Min();
            values["is_weight_max"] = importance.Max();
            values["is_clipped_frac"] = importance.Count(x => x >= config.Scst.IsClip - 1e-6) / (double)importance.Count;
        }
        return values;
    }

    /// <summary>
    /// Steps 4–5 for one micro-batch: teacher-forced log p_θ(wˢ) with gradients, ρˢ when off-policy, the loss divided
    /// by <c>accum_grad_iters</c> and backpropagated. Returns the loss and the ρˢ (null on-policy).
    /// <paramref name="injectNonfinite"/>: the loss is made NaN before backward (<see cref="FaultInjection"/>).
    /// </summary>
    public (double Loss, double[]? ImportanceWeights) Backward(ScoredRollout m, bool offPolicy, bool injectNonfinite = false)
    {
        using var scope = NewDisposeScope();
        policy.Model.train();
        var pixels = train.Pixels(m.Rollout.ImageIndices, policy.Device);
        var sequences = tensor(m.Rollout.Sequences.SelectMany(r => r).ToArray(), [m.Rollout.Sequences.Length, m.Rollout.Sequences[0].Length]).to(policy.Device);
        var (logp, mask) = policy.SequenceLogProbs(pixels, sequences);                                // log p_θ(wˢ_t | wˢ_<t, I)
        var advantages = tensor(m.Advantages.Select(a => (float)a).ToArray()).to(policy.Device);
        Tensor? rho = null;
        if (offPolicy)                                                                                  // 4. ρˢ = min(c, p_θ(wˢ) / μ(wˢ))
        {
            var seqLogp = (logp.detach() * mask.to(logp.dtype)).sum(1);
            rho = (seqLogp - tensor(m.Rollout.BehaviourLogProbs).to(policy.Device)).exp().clamp_max(Scalars.Of(config.Scst.IsClip));
        }
        var loss = ScstLoss.Compute(logp, mask, advantages, config.Scst.LossNormalization, rho);         // 5. L(θ) = −mean ρ·A·log p_θ(wˢ)
        if (injectNonfinite) loss = loss.mul(Scalars.Of(double.NaN));
        // Scalars: an implicit conversion could be finalised while the native op reads it (TorchSharp 0.107).
        loss.div(Scalars.Of((long)config.Run.AccumGradIters)).backward();
        return (loss.item<float>(), rho?.cpu().data<float>().Select(v => (double)v).ToArray());
    }

    /// <summary>
    /// A whole update in this process: steps 1–3 for each micro-batch (<paramref name="batches"/>, each sampled from its
    /// own seed) and 4–6. The plain trainer runs this; the actor learner replays journaled updates with it.
    /// </summary>
    public Dictionary<string, double> RunLocal(long update, int dataEpoch, IReadOnlyList<int[]> batches, RolloutGenerator rollouts, CiderDReward reward) =>
        Apply(update, dataEpoch, [.. batches.Select((b, m) => Collect(rollouts, reward, b, update, RolloutGenerator.SamplingSeed(config.Run.Seed, update, m)))], offPolicy: false);

    /// <summary>What the update's rollouts looked like: reward and baseline, advantage spread, entropy, length, diversity.</summary>
    public static Dictionary<string, double> RolloutStats(ScoredRollout m)
    {
        var (r, rewards, adv) = (m.Rollout, m.Rewards, m.Advantages);
        var mean = adv.Average();
        var tokens = r.Lengths.Sum();
        var stats = new Dictionary<string, double>
        {
            ["reward_mean"] = rewards.Average(),
            ["reward_max"] = rewards.Max(),
            ["baseline_mean"] = rewards.Zip(adv, (x, a) => x - a).Average(),
            ["advantage_std"] = Math.Sqrt(adv.Sum(a => (a - mean) * (a - mean)) / adv.Length),
            // Monte-Carlo estimate of the per-token entropy of the behaviour policy (exact for sampling at T = 1).
            ["entropy"] = tokens > 0 ? -r.BehaviourLogProbs.Sum() / tokens : 0,
            ["caption_length"] = r.Lengths.Average(),
            ["distinct_captions"] = r.Captions.Distinct().Count() / (double)r.Captions.Length,
        };
        if (m.GreedyRewards is not null) stats["greedy_reward_mean"] = m.GreedyRewards.Average();
        return stats;
    }

    private static void Accumulate(Dictionary<string, double> acc, string key, double value, int microBatches) =>
        acc[key] = acc.GetValueOrDefault(key) + value / microBatches;
}
