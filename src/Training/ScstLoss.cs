using Scst.Model;
using Scst.Training.Configuration;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>
/// The self-critical policy-gradient loss (Rennie et al. 2017, eq. 9 with a baseline):
/// <c>L = −E[(r(w) − b) · log p(w)]</c>, over N = B·K sampled captions.
/// </summary>
public static class ScstLoss
{
    /// <param name="tokenLogProbs">[N, L] log p of each generated token, with gradients.</param>
    /// <param name="mask">[N, L] 1 for tokens up to and including EOS.</param>
    /// <param name="advantages">[N] r − b, no gradient.</param>
    /// <param name="normalization">
    /// <c>length_mean</c>: log p(w) / |w| per caption, as the seed (HF's sequences_scores with length_penalty 1);
    /// <c>sum</c>: the plain sequence log-prob of the paper; <c>token_mean</c>: Σ A·log p over all tokens / all tokens.
    /// </param>
    /// <param name="importanceWeights">[N] truncated π_new/π_behaviour for stale rollouts (async SCST), or null.</param>
    public static Tensor Compute(Tensor tokenLogProbs, Tensor mask, Tensor advantages, LossNormalization normalization, Tensor? importanceWeights = null)
    {
        var m = mask.to(tokenLogProbs.dtype);
        var seqLogProb = (tokenLogProbs * m).sum(1);
        var lengths = m.sum(1).clamp_min(Scalars.One);
        var weight = importanceWeights is null ? advantages : advantages * importanceWeights;
        return normalization switch
        {
            LossNormalization.LengthMean => -(seqLogProb / lengths * weight).mean(),
            LossNormalization.Sum => -(seqLogProb * weight).mean(),
            LossNormalization.TokenMean => -(seqLogProb * weight).sum() / lengths.sum(),
            _ => throw new ArgumentOutOfRangeException(nameof(normalization), normalization, "unknown loss normalization"),
        };
    }
}
