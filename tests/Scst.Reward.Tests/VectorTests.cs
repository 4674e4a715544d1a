namespace Scst.Reward.Tests;

/// <summary>Every case of the pycocoevalcap reference vectors, corpus and per image.</summary>
public class VectorTests
{
    public static TheoryData<string, string> Cases => ReferenceVectors.AllCases();

    private static CaptionEvaluation Evaluate(VectorCase c, int dop = 1) =>
        CaptionEvaluator.Evaluate(c.Samples(), new EvaluationOptions { Tokenize = false, DegreeOfParallelism = dop });

    [Theory]
    [MemberData(nameof(Cases))]
    public void CorpusMetricsMatchPycocoevalcap(string file, string id)
    {
        var c = ReferenceVectors.Get(file, id);
        var e = Evaluate(c);
        Assert.Equal(c.Expect("CIDEr"), e.Corpus["CIDEr"], 1e-12);
        foreach (var m in new[] { "Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L" })
            Assert.True(Math.Abs(c.Expect(m) - e.Corpus[m]) <= 1e-9, $"{id} {m}: expected {c.Expect(m):R}, got {e.Corpus[m]:R}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PerImageMetricsMatchPycocoevalcap(string file, string id)
    {
        var c = ReferenceVectors.Get(file, id);
        var e = Evaluate(c);
        foreach (var m in CaptionEvaluation.MetricNames)
        {
            var expected = c.ExpectPerImage(m);
            var actual = e.PerImage[m];
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-9,
                    $"{id} {m} image {c.ImgIds[i]}: expected {expected[i]:R}, got {actual[i]:R}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ParallelScoringGivesTheSameBits(string file, string id)
    {
        var c = ReferenceVectors.Get(file, id);
        var serial = Evaluate(c, 1);
        var parallel = Evaluate(c, 4);
        foreach (var m in CaptionEvaluation.MetricNames)
        {
            Assert.Equal(serial.Corpus[m], parallel.Corpus[m]);
            Assert.Equal(serial.PerImage[m], parallel.PerImage[m]);
        }
    }

    [Fact]
    public void FlickrRawTextThroughPtbTokenizerIsWithinOnePercentCider()
    {
        var c = ReferenceVectors.Get(ReferenceVectors.Flickr, "flickr8k_train_subset_600");
        var e = CaptionEvaluator.Evaluate(c.Samples(raw: true), new EvaluationOptions { Tokenize = true });
        double expected = c.Expect("CIDEr");
        Assert.True(Math.Abs(e.Corpus["CIDEr"] - expected) / expected < 0.01,
            $"corpus CIDEr-D from raw text {e.Corpus["CIDEr"]:R} vs {expected:R} from the simple preprocessing");
    }
}
