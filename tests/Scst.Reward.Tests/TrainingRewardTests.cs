namespace Scst.Reward.Tests;

public class TrainingRewardTests
{
    private static VectorCase Coco200 => ReferenceVectors.Get(ReferenceVectors.Coco, "coco_like_corpus_200");

    [Fact]
    public void DfBuiltFromTheScoredReferencesReproducesCorpusModeExactly()
    {
        var c = Coco200;
        var df = DocumentFrequency.Build(c.ImgIds.Select(id => (IReadOnlyList<string>)c.Refs[id]).ToList(), countEos: false);
        var reward = new CiderDReward(df);
        var rewards = new double[c.ImgIds.Length];
        reward.Score(c.ImgIds.Select(id => (IReadOnlyList<string>)c.Refs[id]).ToList(), c.ImgIds.Select(id => c.Cands[id]).ToList(), rewards);
        Assert.Equal(c.ExpectPerImage("CIDEr"), rewards);
    }

    [Fact]
    public void DfFileRoundTripsAndScoresTheSame()
    {
        var c = Coco200;
        var refs = c.ImgIds.Select(id => (IReadOnlyList<string>)c.Refs[id]).ToList();
        var df = DocumentFrequency.Build(refs, countEos: true, degreeOfParallelism: 3);
        var path = Path.Combine(Path.GetTempPath(), $"df-{Guid.NewGuid():N}.bin");
        try
        {
            df.Save(path);
            var loaded = DocumentFrequency.Load(path);
            Assert.Equal(df.NumImages, loaded.NumImages);
            Assert.Equal(df.NGramCount, loaded.NGramCount);
            Assert.True(loaded.CountsEos);
            var cands = c.ImgIds.Select(id => c.Cands[id]).ToList();
            Assert.Equal(new CiderDReward(df).Score(refs, cands), new CiderDReward(loaded).Score(refs, cands));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void LoadingGarbageNamesTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"df-{Guid.NewGuid():N}.bin");
        File.WriteAllText(path, "not a df table");
        try
        {
            var ex = Assert.Throws<InvalidDataException>(() => DocumentFrequency.Load(path));
            Assert.Contains(path, ex.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void EosChangesTheScoreAndIsCountedAsAToken()
    {
        var c = Coco200;
        var samples = c.Samples();
        var without = CaptionEvaluator.Evaluate(samples, new EvaluationOptions { Tokenize = false });
        var with = CaptionEvaluator.Evaluate(samples, new EvaluationOptions { Tokenize = false, CountEos = true });
        Assert.False(without.CountsEos);
        Assert.True(with.CountsEos);
        Assert.NotEqual(without.Corpus["CIDEr"], with.Corpus["CIDEr"]);
        // Appending the EOS word by hand must give exactly the same numbers as the option.
        var manual = samples.Select(s => new CaptionSample(s.ImageId, s.References.Select(r => (r + " </s>").Trim()).ToArray(), (s.Candidate + " </s>").Trim())).ToList();
        var byHand = CaptionEvaluator.Evaluate(manual, new EvaluationOptions { Tokenize = false });
        Assert.Equal(byHand.PerImage["CIDEr"], with.PerImage["CIDEr"]);
        Assert.Equal(without.Corpus["Bleu_4"], with.Corpus["Bleu_4"]);
    }

    [Fact]
    public void IntAndStringPathsAgreeAndKCandidatesAreScoredPerImage()
    {
        var c = Coco200;
        var trainRefs = c.ImgIds.Select(id => (IReadOnlyList<string>)c.Refs[id]).ToList();
        var df = DocumentFrequency.Build(trainRefs, countEos: true);
        var reward = new CiderDReward(df);
        const int B = 16, K = 5;
        var ids = c.ImgIds.Take(B).ToArray();
        // K candidates per image: its own candidate, its references, and another image's candidate.
        var cands = ids.SelectMany((id, b) => new[] { c.Cands[id], c.Refs[id][0], c.Refs[id][1], c.Cands[ids[(b + 1) % B]], "" }).ToList();
        var refs = ids.Select(id => (IReadOnlyList<string>)c.Refs[id]).ToList();
        var byString = reward.Score(refs, cands);

        var vocab = df.Vocabulary;
        int[] Enc(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => vocab.TryGetId(w, out var i) ? i : throw new Exception(w)).ToArray();
        var byInt = reward.Score(refs.Select(r => (IReadOnlyList<int[]>)r.Select(Enc).ToArray()).ToList(), cands.Select(Enc).ToList());
        Assert.Equal(byString, byInt);

        // Each (image, candidate) equals scoring it alone: the K candidates do not interact.
        for (int b = 0; b < B; b++)
            for (int k = 0; k < K; k++)
                Assert.Equal(reward.Score(new[] { refs[b] }, new[] { cands[b * K + k] })[0], byString[b * K + k]);
        Assert.True(byString[0 * K + 1] > byString[0 * K + 3], "a reference should outscore another image's caption");
    }

    [Fact]
    public void ConcurrentCallsGiveTheSameRewards()
    {
        var c = Coco200;
        var refs = c.ImgIds.Select(id => (IReadOnlyList<string>)c.Refs[id]).ToList();
        var reward = new CiderDReward(DocumentFrequency.Build(refs, countEos: false));
        var cands = c.ImgIds.Select(id => c.Cands[id]).ToList();
        var expected = reward.Score(refs, cands);
        var results = new double[8][];
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            for (int rep = 0; rep < 5; rep++) results[t] = reward.Score(refs, cands);
        });
        foreach (var r in results) Assert.Equal(expected, r);
    }

    [Fact]
    public void BadBatchShapesAreRejected()
    {
        IReadOnlyList<IReadOnlyList<string>> refs = [new[] { "a b c" }, new[] { "d e" }];
        var reward = new CiderDReward(DocumentFrequency.Build(refs, countEos: false));
        var ex = Assert.Throws<ArgumentException>(() => reward.Score(refs, new[] { "a", "b", "c" }));
        Assert.Contains("3 candidates for 2 images", ex.Message);
    }
}

public class SelfCriticalTests
{
    private static readonly double[] Rewards = [1.0, 2.0, 3.0, 6.0, 0.5, 0.5]; // B = 2, K = 3

    [Fact]
    public void MeanOfKSubtractsTheImageMean()
    {
        var adv = SelfCritical.Advantages(BaselineKind.MeanOfK, Rewards, 3);
        double[] expected = [-1.0, 0.0, 1.0, 6.0 - 7.0 / 3, 0.5 - 7.0 / 3, 0.5 - 7.0 / 3];
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], adv[i], 12);
        Assert.Equal(0.0, adv.Take(3).Sum(), 12);
        Assert.Equal(0.0, adv.Skip(3).Sum(), 12);
    }

    [Fact]
    public void LeaveOneOutUsesTheMeanOfTheOthers()
    {
        var adv = SelfCritical.Advantages(BaselineKind.LeaveOneOut, Rewards, 3);
        Assert.Equal(1.0 - 2.5, adv[0], 12);
        Assert.Equal(2.0 - 2.0, adv[1], 12);
        Assert.Equal(3.0 - 1.5, adv[2], 12);
        Assert.Equal(6.0 - 0.5, adv[3], 12);
        Assert.Equal(0.5 - 3.25, adv[4], 12);
        Assert.Throws<ArgumentException>(() => SelfCritical.Advantages(BaselineKind.LeaveOneOut, Rewards, 1));
    }

    [Fact]
    public void GreedySubtractsTheGreedyReward()
    {
        var adv = SelfCritical.Advantages(BaselineKind.Greedy, Rewards, 3, [2.0, 1.0]);
        Assert.Equal([-1.0, 0.0, 1.0, 5.0, -0.5, -0.5], adv);
        Assert.Throws<ArgumentException>(() => SelfCritical.Advantages(BaselineKind.Greedy, Rewards, 3, [2.0]));
    }
}
