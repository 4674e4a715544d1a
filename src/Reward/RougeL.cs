namespace Scst.Reward;

/// <summary>ROUGE-L scores: the <c>np.mean</c> over images and the per-image scores in input order.</summary>
public sealed record RougeScores(double Corpus, double[] PerImage);

/// <summary>
/// ROUGE-L exactly as pycocoevalcap's <c>rouge.py</c>: LCS-based F-measure with β = 1.2, where the best
/// precision and the best recall over the references are taken separately. pycocoevalcap splits with
/// <c>split(" ")</c>; <see cref="Vocabulary.EncodeSingleSpace"/> gives the same tokens.
/// </summary>
public static class RougeL
{
    public const double Beta = 1.2;

    public static RougeScores Score(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references, int degreeOfParallelism = 1)
    {
        var perImage = PerImage.Map(candidates, references, degreeOfParallelism, (c, r) => ImageScore(c, r));
        return new RougeScores(NumpyCompat.Mean(perImage), perImage);
    }

    public static double ImageScore(ReadOnlySpan<int> candidate, IReadOnlyList<int[]> references)
    {
        if (references.Count == 0) throw new ArgumentException("ROUGE-L needs at least one reference", nameof(references));
        double precMax = double.NegativeInfinity, recMax = double.NegativeInfinity;
        foreach (var r in references)
        {
            int lcs = Lcs(r, candidate);
            // Python divides by len(split(" ")) >= 1; an empty id array (int API only) scores 0 instead of NaN.
            double prec = candidate.Length == 0 ? 0.0 : lcs / (double)candidate.Length;
            double rec = r.Length == 0 ? 0.0 : lcs / (double)r.Length;
            precMax = Math.Max(precMax, prec);
            recMax = Math.Max(recMax, rec);
        }
        const double beta2 = Beta * Beta;
        if (precMax != 0 && recMax != 0)
            return (1 + beta2) * precMax * recMax / (recMax + beta2 * precMax);
        return 0.0;
    }

    /// <summary>Length of the longest common subsequence (one rolling row over the shorter sequence).</summary>
    public static int Lcs(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        if (a.Length < b.Length) { var t = a; a = b; b = t; }
        if (b.Length == 0) return 0;
        Span<int> row = b.Length <= 256 ? stackalloc int[b.Length + 1] : new int[b.Length + 1];
        row.Clear();
        for (int i = 1; i <= a.Length; i++)
        {
            int diag = 0;
            int ai = a[i - 1];
            for (int j = 1; j <= b.Length; j++)
            {
                int up = row[j];
                row[j] = ai == b[j - 1] ? diag + 1 : Math.Max(up, row[j - 1]);
                diag = up;
            }
        }
        return row[b.Length];
    }
}
