using System.Runtime.CompilerServices;

namespace Scst.Reward;

/// <summary>CIDEr-D scores of a corpus: the <c>np.mean</c> of the per-image scores, and the per-image scores in input order.</summary>
public sealed record CiderScores(double Corpus, double[] PerImage);

/// <summary>
/// CIDEr-D (Vedantam et al. 2015) computed exactly as pycocoevalcap's <c>cider_scorer.py</c>:
/// n = 1..4, σ = 6, tf-idf with raw counts and idf = ln(N) − ln(max(1, df)), clipped similarity
/// Σ min(h, r)·r / (‖h‖·‖r‖), Gaussian penalty on the difference of bigram counts, mean over n,
/// mean over references, ×10. Works on int token ids; see <see cref="Vocabulary"/> for strings.
/// The similarity of one image is <see cref="CiderScratch"/>; evaluation mode (document frequencies of the
/// corpus being scored) is in CiderD.Corpus.cs; the fixed training table is <see cref="DocumentFrequency"/>.
/// </summary>
public static partial class CiderD
{
    public const double Sigma = 6.0;

    /// <summary>
    /// Evaluation mode, what pycocoevalcap does: document frequencies come from the references being
    /// scored, N = number of images. <paramref name="eosId"/> &gt;= 0 appends that token to every sentence.
    /// <paramref name="degreeOfParallelism"/> 1 runs on the calling thread only; the scores do not depend on it.
    /// </summary>
    public static CiderScores Score(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references,
        int eosId = -1, int degreeOfParallelism = 1)
    {
        Validate(candidates, references);
        var perImage = degreeOfParallelism <= 1 || references.Count < 2
            ? CorpusSequential(candidates, references, eosId)
            : CorpusParallel(candidates, references, eosId, degreeOfParallelism);
        return new CiderScores(NumpyCompat.Mean(perImage), perImage);
    }

    /// <summary>Fixed document frequencies (training reward, self-critical.pytorch's cached df): N = df.NumImages, EOS as the df was built.</summary>
    public static CiderScores Score(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references,
        DocumentFrequency df, int degreeOfParallelism = 1)
    {
        Validate(candidates, references);
        return ScoreWith(candidates, references, df.EosId, [df.Map], df.NumImages, degreeOfParallelism);
    }

    private static void Validate(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references)
    {
        if (candidates.Count != references.Count)
            throw new ArgumentException($"{candidates.Count} candidates but {references.Count} reference sets; need one candidate per image");
        for (int i = 0; i < references.Count; i++)
            if (references[i].Count == 0) throw new ArgumentException($"image #{i} has no references");
    }

    private static CiderScores ScoreWith(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references,
        int eosId, NGramCountMap[] shards, int numImages, int dop)
    {
        var perImage = new double[candidates.Count];
        var logDf = LogTable(numImages);
        double refLen = Math.Log(numImages);
        Parallel.ForEach(System.Collections.Concurrent.Partitioner.Create(0, candidates.Count, Math.Max(64, candidates.Count / Math.Max(1, dop * 8))),
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, dop) }, range =>
            {
                var cooker = ImageCooker.ForThread();
                var scratch = CiderScratch.ForThread();
                Span<double> one = stackalloc double[1];
                for (int i = range.Item1; i < range.Item2; i++)
                {
                    cooker.Reset();
                    cooker.AddSentence(candidates[i], eosId);
                    cooker.AddSentences(references[i], eosId);
                    scratch.ComputeIdf(cooker, shards, logDf, refLen);
                    scratch.ScoreCandidates(cooker.View, 0, 1, 1, references[i].Count, one);
                    perImage[i] = one[0];
                }
            });
        return new CiderScores(NumpyCompat.Mean(perImage), perImage);
    }

    /// <summary>ln(max(1, df)) for df = 0..N, so each distinct n-gram costs a table read instead of a log.</summary>
    internal static double[] LogTable(int numImages)
    {
        var t = new double[Math.Max(2, numImages + 1)];
        for (int d = 0; d < t.Length; d++) t[d] = Math.Log(Math.Max(1.0, d));
        return t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int ShardOf(ulong hash, int shardCount) => shardCount == 1 ? 0 : (int)((hash >> 40) % (ulong)shardCount);
}
