using System.Runtime.CompilerServices;

namespace Scst.Reward;

/// <summary>
/// The CIDEr-D similarity of one cooked image (idf, tf-idf vectors, clipped cosine, length penalty), with
/// per-thread buffers so that scoring allocates nothing once they have grown.
/// </summary>
internal sealed class CiderScratch
{
    private double[] _idf = new double[256];
    private double[] _refVal = new double[256];
    private double[] _hypVal = new double[1024];
    private double[] _hypNorm = new double[64];
    private double[] _acc = new double[64];

    private static readonly double[] PenaltyCache = BuildPenaltyCache();

    private static double[] BuildPenaltyCache()
    {
        var c = new double[512];
        for (int d = 0; d < c.Length; d++) c[d] = NumpyCompat.LengthPenalty(d, CiderD.Sigma);
        return c;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Penalty(int delta)
    {
        int a = Math.Abs(delta);
        return a < PenaltyCache.Length ? PenaltyCache[a] : NumpyCompat.LengthPenalty(delta, CiderD.Sigma);
    }

    public void ComputeIdf(ImageCooker c, NGramCountMap[] shards, double[] logDf, double refLen)
    {
        if (_idf.Length < c.LocalCount) { _idf = new double[c.KeyLo.Length]; _refVal = new double[c.KeyLo.Length]; }
        int shardCount = shards.Length;
        for (int l = 0; l < c.LocalCount; l++)
        {
            ulong h = c.KeyHash[l];
            int df = shards[CiderD.ShardOf(h, shardCount)].Get(c.KeyLo[l], c.KeyHi[l], h);
            double log = df < logDf.Length ? logDf[df] : Math.Log(df);
            _idf[l] = refLen - log;
        }
    }

    /// <summary>idf of each local id of an image whose corpus-wide ids are <paramref name="gids"/> (shard in the low <paramref name="shardBits"/> bits).</summary>
    public void ComputeIdf(ReadOnlySpan<int> gids, int[][] shardDf, int shardBits, double[] logDf, double refLen)
    {
        if (_idf.Length < gids.Length) { _idf = new double[gids.Length * 2]; _refVal = new double[gids.Length * 2]; }
        int shardMask = (1 << shardBits) - 1;
        for (int l = 0; l < gids.Length; l++)
        {
            int g = gids[l];
            int df = shardDf[g & shardMask][g >> shardBits];
            _idf[l] = refLen - logDf[df];
        }
    }

    /// <summary>
    /// Scores candidate sentences [firstCand, firstCand + candCount) against reference sentences
    /// [firstRef, firstRef + refCount) of the cooker. Each reference's tf-idf vector is built once
    /// and shared by all candidates; per candidate the references are still summed in order.
    /// </summary>
    public void ScoreCandidates(in CookedView c, int firstCand, int candCount, int firstRef, int refCount, Span<double> output)
    {
        const int N = NGramKey.MaxOrder;
        if (_hypNorm.Length < candCount * N) { _hypNorm = new double[candCount * N * 2]; _acc = new double[candCount * N * 2]; }
        int hypEntries = c.OrderStart[5 * (firstCand + candCount - 1) + 4] - c.OrderStart[5 * firstCand];
        if (_hypVal.Length < hypEntries) _hypVal = new double[hypEntries * 2];
        int hypBase = c.OrderStart[5 * firstCand];
        var idf = _idf;
        var hypVal = _hypVal;
        var refVal = _refVal;

        for (int k = 0; k < candCount; k++)
        {
            int s = firstCand + k;
            for (int n = 0; n < N; n++)
            {
                _hypNorm[k * N + n] = TfIdf(c, s, n, idf, hypVal, hypBase, byLocalId: false);
                _acc[k * N + n] = 0.0;
            }
        }

        Span<double> refNorm = stackalloc double[N];
        for (int r = 0; r < refCount; r++)
        {
            int s = firstRef + r;
            for (int n = 0; n < N; n++) refNorm[n] = TfIdf(c, s, n, idf, refVal, 0, byLocalId: true);
            int refLength = Math.Max(0, c.Length[s] - 1);

            for (int k = 0; k < candCount; k++)
            {
                int hs = firstCand + k;
                double penalty = Penalty(Math.Max(0, c.Length[hs] - 1) - refLength);
                for (int n = 0; n < N; n++)
                {
                    double val = 0.0;
                    for (int e = c.OrderStart[5 * hs + n]; e < c.OrderStart[5 * hs + n + 1]; e++)
                    {
                        // An n-gram absent from the reference contributes min(h, 0)·0 = 0, as in the Python defaultdict.
                        double rv = refVal[c.EntryLocal[e]];
                        val += Math.Min(hypVal[e - hypBase], rv) * rv;
                    }
                    double nh = _hypNorm[k * N + n], nr = refNorm[n];
                    if (nh != 0 && nr != 0) val /= nh * nr;
                    val *= penalty;
                    _acc[k * N + n] += val;
                }
            }

            for (int e = c.OrderStart[5 * s]; e < c.OrderStart[5 * s + 4]; e++) refVal[c.EntryLocal[e]] = 0.0;
        }

        for (int k = 0; k < candCount; k++)
        {
            // np.mean over the 4 orders (sequential below 8 elements), then / len(refs), then × 10.
            double sum = 0.0;
            for (int n = 0; n < N; n++) sum += _acc[k * N + n];
            double score = sum / N;
            score /= refCount;
            score *= 10.0;
            output[k] = score;
        }
    }

    /// <summary>
    /// The tf-idf vector of sentence <paramref name="s"/>'s n-grams of order <paramref name="n"/> + 1 into
    /// <paramref name="values"/> (at the entry's position from <paramref name="entryBase"/>, or at its local n-gram id,
    /// <paramref name="byLocalId"/>); returns its norm.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double TfIdf(in CookedView c, int s, int n, double[] idf, double[] values, int entryBase, bool byLocalId)
    {
        double norm = 0.0;
        for (int e = c.OrderStart[5 * s + n]; e < c.OrderStart[5 * s + n + 1]; e++)
        {
            double v = c.EntryCount[e] * idf[c.EntryLocal[e]];
            values[byLocalId ? c.EntryLocal[e] : e - entryBase] = v;
            norm += v * v;
        }
        return Math.Sqrt(norm);
    }

    [ThreadStatic] private static CiderScratch? t_instance;
    public static CiderScratch ForThread() => t_instance ??= new CiderScratch();
}
