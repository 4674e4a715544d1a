using static TorchSharp.torch;

namespace Scst.Model.Generation;

/// <summary>
/// Sampling whose randomness belongs to each returned row, not to the batch: row i's draw at step t is a uniform from
/// a SplitMix64 stream keyed by (key_i, t), turned into a token by inverse CDF. A row given the same probabilities
/// therefore draws the same token whichever rows share its batch, in whatever order, on whatever worker — which a
/// shared generator (<c>torch.multinomial</c>) cannot promise, since its draws depend on the row's position.
/// </summary>
public static class KeyedSampling
{
    /// <summary>SplitMix64's increment (2⁶⁴/φ).</summary>
    public const ulong Gamma = 0x9E3779B97F4A7C15UL;

    /// <summary>SplitMix64's output function: a bijection of 64-bit words whose every input bit moves every output bit.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>
    /// The uniform of <paramref name="key"/> at decoding step <paramref name="step"/>: output step + 1 of the SplitMix64
    /// stream seeded with the key, as 53 bits centred in their cell, so it lies strictly inside (0, 1): u = 0 would pick
    /// token 0 even at probability 0.
    /// </summary>
    public static double Uniform(ulong key, long step) =>
        ((Mix(key + (ulong)(step + 1) * Gamma) >> 11) + 0.5) * (1.0 / (1UL << 53));

    /// <summary>The uniforms [N, steps] (float64, on <paramref name="device"/>) of N keys for steps 0 … steps − 1: one host→device copy per call.</summary>
    public static Tensor Uniforms(IReadOnlyList<ulong> keys, long steps, Device device)
    {
        var u = new double[keys.Count * steps];
        for (var i = 0; i < keys.Count; i++)
            for (long t = 0; t < steps; t++) u[i * steps + t] = Uniform(keys[i], t);
        return tensor(u, [keys.Count, steps]).to(device);
    }

    /// <summary>
    /// Inverse-CDF draw: for probabilities <paramref name="probs"/> [N, V] (non-negative; rows need not sum to 1) and
    /// uniforms <paramref name="u"/> [N] in (0, 1), row i's token is the number of cumulative sums below u_i · (row total).
    /// Scaling by the row total keeps a row whose sum rounds short of 1 off its zero-probability tail; a token of
    /// probability 0 is never drawn, since its cumulative sum equals its predecessor's. Computed in float64.
    /// </summary>
    public static Tensor Draw(Tensor probs, Tensor u)
    {
        using var scope = NewDisposeScope();
        var cdf = probs.to(ScalarType.Float64).cumsum(1);
        var v = cdf.shape[1];
        var threshold = u.to(ScalarType.Float64).mul(cdf.select(1, v - 1)).unsqueeze(1);
        return cdf.lt(threshold).sum(1, type: ScalarType.Int64).clamp_max(Scalars.Of(v - 1)).MoveToOuterDisposeScope();
    }
}
