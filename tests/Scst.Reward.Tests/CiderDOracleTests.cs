namespace Scst.Reward.Tests;

/// <summary>
/// CIDEr-D against a line-by-line transcription of pycocoevalcap's cider_scorer.py (dictionaries of
/// n-gram strings, no hashing, no buffers) on inputs the reference vectors never reach: token ids far
/// beyond any small vocabulary, and one image with hundreds of distinct n-grams, so every table of the
/// fast scorer has to grow mid-image.
/// </summary>
public class CiderDOracleTests
{
    private static (int[][] Cands, int[][][] Refs) Corpus(int seed)
    {
        var rng = new Random(seed);
        int[] Sentence(int length, int vocab, int offset) => Enumerable.Range(0, length).Select(_ => offset + rng.Next(vocab)).ToArray();
        var cands = new List<int[]>();
        var refs = new List<int[][]>();
        // Image 0: 60 references of 40 tokens over 30 ids near 200,000: thousands of distinct n-grams, many repeated.
        refs.Add(Enumerable.Range(0, 60).Select(_ => Sentence(40, 30, 200_000)).ToArray());
        cands.Add(Sentence(45, 30, 200_000));
        // Images 1..39: ordinary sizes, small ids shared with each other, some empty candidates and repeats.
        for (int i = 1; i < 40; i++)
        {
            refs.Add(Enumerable.Range(0, 1 + rng.Next(6)).Select(_ => Sentence(1 + rng.Next(14), 25, 0)).ToArray());
            cands.Add(i % 13 == 0 ? [] : i % 7 == 0 ? refs[^1][0] : Sentence(1 + rng.Next(14), 25, 0));
        }
        return (cands.ToArray(), refs.ToArray());
    }

    [Theory]
    [InlineData(1, -1, 1)]
    [InlineData(2, -1, 3)]
    [InlineData(3, 7, 1)]
    [InlineData(4, 7, 4)]
    public void CorpusModeMatchesTheTextbookFormula(int seed, int eos, int dop)
    {
        var (cands, refs) = Corpus(seed);
        var expected = Oracle(cands, refs, eos);
        var actual = CiderD.Score(cands, refs, eos, dop);
        Assert.Equal(expected.Length, actual.PerImage.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual.PerImage[i]) <= 1e-9 * Math.Max(1, Math.Abs(expected[i])),
                $"image {i}: oracle {expected[i]:R}, scorer {actual.PerImage[i]:R}");
        Assert.True(actual.PerImage[0] > 0, "the large image shares n-grams with its references");
    }

    [Fact]
    public void TrainingRewardWithTheCorpusDfEqualsCorpusMode()
    {
        var (cands, refs) = Corpus(5);
        var vocab = new Vocabulary(Enumerable.Range(0, 200_300).Select(i => $"w{i}"));
        var df = DocumentFrequency.Build(vocab, refs, eosId: -1);
        var reward = new CiderDReward(df).Score(refs, cands);
        var expected = Oracle(cands, refs, -1);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - reward[i]) <= 1e-9 * Math.Max(1, Math.Abs(expected[i])), $"image {i}: oracle {expected[i]:R}, reward {reward[i]:R}");
    }

    /// <summary>cider_scorer.py: precook, document frequency over reference sets, counts2vec, sim, mean × 10.</summary>
    private static double[] Oracle(int[][] cands, int[][][] refs, int eos)
    {
        const int N = 4;
        const double sigma = 6.0;
        int[] WithEos(int[] s) => eos >= 0 ? [.. s, eos] : s;
        Dictionary<string, int> Precook(int[] words)
        {
            var counts = new Dictionary<string, int>();
            for (int k = 1; k <= N; k++)
                for (int i = 0; i + k <= words.Length; i++)
                {
                    var g = string.Join(' ', words[i..(i + k)]);
                    counts[g] = counts.GetValueOrDefault(g) + 1;
                }
            return counts;
        }
        var crefs = refs.Select(r => r.Select(s => Precook(WithEos(s))).ToArray()).ToArray();
        var ctest = cands.Select(c => Precook(WithEos(c))).ToArray();
        var df = new Dictionary<string, int>();
        foreach (var image in crefs)
            foreach (var g in image.SelectMany(c => c.Keys).Distinct()) df[g] = df.GetValueOrDefault(g) + 1;
        double refLen = Math.Log(refs.Length);

        (Dictionary<string, double>[] Vec, double[] Norm, int Length) CountsToVec(Dictionary<string, int> cnts)
        {
            var vec = Enumerable.Range(0, N).Select(_ => new Dictionary<string, double>()).ToArray();
            var norm = new double[N];
            int length = 0;
            foreach (var (g, tf) in cnts)
            {
                int n = g.Count(ch => ch == ' ');
                double v = tf * (refLen - Math.Log(Math.Max(1.0, df.GetValueOrDefault(g))));
                vec[n][g] = v;
                norm[n] += v * v;
                if (n == 1) length += tf;
            }
            return (vec, norm.Select(Math.Sqrt).ToArray(), length);
        }

        var scores = new double[cands.Length];
        for (int i = 0; i < cands.Length; i++)
        {
            var (vh, nh, lh) = CountsToVec(ctest[i]);
            var score = new double[N];
            foreach (var r in crefs[i])
            {
                var (vr, nr, lr) = CountsToVec(r);
                double delta = lh - lr;
                for (int n = 0; n < N; n++)
                {
                    double val = 0;
                    foreach (var (g, h) in vh[n])
                    {
                        double rv = vr[n].GetValueOrDefault(g);
                        val += Math.Min(h, rv) * rv;
                    }
                    if (nh[n] != 0 && nr[n] != 0) val /= nh[n] * nr[n];
                    val *= Math.Exp(-(delta * delta) / (2 * sigma * sigma));
                    score[n] += val;
                }
            }
            scores[i] = score.Average() / crefs[i].Length * 10.0;
        }
        return scores;
    }
}
