namespace Scst.Reward;

/// <summary>BLEU-1..4: corpus scores and per-image scores (each list in input order).</summary>
public sealed record BleuScores(double[] Corpus, double[][] PerImage);

/// <summary>
/// BLEU exactly as pycocoevalcap's <c>bleu_scorer.py</c> with option='closest': clipped n-gram counts
/// against the per-n-gram maximum over references, the reference length closest to the candidate
/// (ties go to the shorter), precision (correct + 1e-15) / (guess + 1e-9) and the same smoothing in
/// the brevity penalty. Corpus BLEU pools the counts of all images.
/// </summary>
public static class Bleu
{
    public const int MaxN = 4;
    private const double Tiny = 1e-15, Small = 1e-9;

    /// <summary>Sufficient statistics of one image.</summary>
    public struct Stats
    {
        public int TestLen, RefLen;
        public int Guess1, Guess2, Guess3, Guess4, Correct1, Correct2, Correct3, Correct4;
        public readonly int Guess(int k) => k switch { 0 => Guess1, 1 => Guess2, 2 => Guess3, _ => Guess4 };
        public readonly int Correct(int k) => k switch { 0 => Correct1, 1 => Correct2, 2 => Correct3, _ => Correct4 };
    }

    public static BleuScores Score(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references, int degreeOfParallelism = 1)
    {
        var stats = PerImage.Map(candidates, references, degreeOfParallelism, ImageStats);

        var perImage = new double[MaxN][];
        for (int k = 0; k < MaxN; k++) perImage[k] = new double[stats.Length];
        long testLen = 0, refLen = 0;
        Span<long> guess = stackalloc long[MaxN], correct = stackalloc long[MaxN];
        Span<double> one = stackalloc double[MaxN];
        for (int i = 0; i < stats.Length; i++)
        {
            var s = stats[i];
            testLen += s.TestLen; refLen += s.RefLen;
            for (int k = 0; k < MaxN; k++) { guess[k] += s.Guess(k); correct[k] += s.Correct(k); }
            FromCounts(s.TestLen, s.RefLen, s, one);
            for (int k = 0; k < MaxN; k++) perImage[k][i] = one[k];
        }
        var corpus = new double[MaxN];
        double bleu = 1.0;
        for (int k = 0; k < MaxN; k++)
        {
            bleu *= (correct[k] + Tiny) / (guess[k] + Small);
            corpus[k] = Math.Pow(bleu, 1.0 / (k + 1));
        }
        double ratio = (testLen + Tiny) / (refLen + Small);
        if (ratio < 1)
            for (int k = 0; k < MaxN; k++) corpus[k] *= Math.Exp(1 - 1 / ratio);
        return new BleuScores(corpus, perImage);
    }

    private static void FromCounts(int testLen, int refLen, in Stats s, Span<double> output)
    {
        double bleu = 1.0;
        for (int k = 0; k < MaxN; k++)
        {
            bleu *= ((double)s.Correct(k) + Tiny) / ((double)s.Guess(k) + Small);
            output[k] = Math.Pow(bleu, 1.0 / (k + 1));
        }
        double ratio = (testLen + Tiny) / (refLen + Small);
        if (ratio < 1)
            for (int k = 0; k < MaxN; k++) output[k] *= Math.Exp(1 - 1 / ratio);
    }

    public static Stats ImageStats(int[] candidate, IReadOnlyList<int[]> references)
    {
        var c = ImageCooker.ForThread();
        c.Reset();
        c.AddSentence(candidate, -1);
        c.AddSentences(references, -1);
        var maxRef = MaxRefBuffer(c.KeyLo.Length);
        for (int s = 1; s <= references.Count; s++)
            for (int e = c.OrderStart[5 * s]; e < c.OrderStart[5 * s + 4]; e++)
                maxRef[c.EntryLocal[e]] = Math.Max(maxRef[c.EntryLocal[e]], c.EntryCount[e]);

        int T = candidate.Length;
        var st = new Stats { TestLen = T };
        Span<int> correct = stackalloc int[MaxN];
        for (int n = 0; n < MaxN; n++)
            for (int e = c.OrderStart[n]; e < c.OrderStart[n + 1]; e++)
                correct[n] += Math.Min(maxRef[c.EntryLocal[e]], c.EntryCount[e]);
        (st.Correct1, st.Correct2, st.Correct3, st.Correct4) = (correct[0], correct[1], correct[2], correct[3]);
        (st.Guess1, st.Guess2, st.Guess3, st.Guess4) = (Math.Max(0, T), Math.Max(0, T - 1), Math.Max(0, T - 2), Math.Max(0, T - 3));

        // min((abs(l - testlen), l)): the closest length, the shorter one on a tie.
        int best = int.MaxValue, bestDist = int.MaxValue;
        foreach (var r in references)
        {
            int d = Math.Abs(r.Length - T);
            if (d < bestDist || (d == bestDist && r.Length < best)) { bestDist = d; best = r.Length; }
        }
        st.RefLen = best;
        Array.Clear(maxRef, 0, c.LocalCount);
        return st;
    }

    [ThreadStatic] private static int[]? t_maxRef;
    private static int[] MaxRefBuffer(int size)
    {
        if (t_maxRef is null || t_maxRef.Length < size) t_maxRef = new int[size];
        return t_maxRef;
    }
}
