namespace Scst.Reward;

/// <summary>
/// The floating-point operations whose exact order decides pycocoevalcap's last digits.
/// </summary>
public static class NumpyCompat
{
    /// <summary>
    /// <c>np.mean</c> of a contiguous float64 array: numpy's pairwise summation (blocks of 8 unrolled
    /// accumulators below 128 elements, halving above), then one division by the count.
    /// </summary>
    public static double Mean(ReadOnlySpan<double> values) =>
        values.Length == 0 ? double.NaN : PairwiseSum(values) / values.Length;

    public static double PairwiseSum(ReadOnlySpan<double> a)
    {
        int n = a.Length;
        if (n < 8)
        {
            double res = 0.0;
            for (int i = 0; i < n; i++) res += a[i];
            return res;
        }
        if (n <= 128)
        {
            double r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7];
            int i;
            for (i = 8; i < n - (n % 8); i += 8)
            {
                r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3];
                r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7];
            }
            double res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
            for (; i < n; i++) res += a[i];
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return PairwiseSum(a[..n2]) + PairwiseSum(a[n2..]);
    }

    /// <summary>
    /// CIDEr-D's Gaussian length penalty exactly as pycocoevalcap writes it: <c>np.e ** (-(delta**2) / (2 * sigma**2))</c>.
    /// Python's float <c>**</c> is C <c>pow</c>, and so is <see cref="Math.Pow"/>; <c>exp(x)</c> can differ in the last bit.
    /// </summary>
    public static double LengthPenalty(double delta, double sigma) =>
        Math.Pow(Math.E, -(delta * delta) / (2 * (sigma * sigma)));
}
