using Scst.Training.Configuration;
using Scst.Training;
using static TorchSharp.torch;

namespace Scst.Training.Tests;

public class ScstMathTests
{
    public ScstMathTests() => Scst.Model.TorchRuntime.Initialize();

    [Fact]
    public void LossMatchesTheFormulaForEachNormalization()
    {
        using var scope = NewDisposeScope();
        var lp = tensor(new float[] { -1f, -2f, -3f, -0.5f, -0.5f, 0f }, [2, 3]);
        var mask = tensor(new float[] { 1, 1, 1, 1, 1, 0 }, [2, 3]);
        var adv = tensor(new float[] { 2f, -1f });
        // sequence log-probs: -6 (3 tokens) and -1 (2 tokens)
        Assert.Equal(-(-6.0 / 3 * 2 + -1.0 / 2 * -1) / 2, ScstLoss.Compute(lp, mask, adv, LossNormalization.LengthMean).item<float>(), 5);
        Assert.Equal(-(-6.0 * 2 + -1.0 * -1) / 2, ScstLoss.Compute(lp, mask, adv, LossNormalization.Sum).item<float>(), 5);
        Assert.Equal(-(-6.0 * 2 + -1.0 * -1) / 5, ScstLoss.Compute(lp, mask, adv, LossNormalization.TokenMean).item<float>(), 5);
        var isw = tensor(new float[] { 0.5f, 1f });
        Assert.Equal(-(-6.0 * 2 * 0.5 + -1.0 * -1) / 2, ScstLoss.Compute(lp, mask, adv, LossNormalization.Sum, isw).item<float>(), 5);
    }

    [Fact]
    public void SamplingKeysAreDistinctPerSeedImageAndSampleAndBelongToTheImage()
    {
        int[] batch = [7, 3, 42, 0, 19];
        var keys = RolloutGenerator.Keys(batch, 4, 12345UL);
        Assert.Equal(20, keys.Length);
        Assert.Equal(keys, RolloutGenerator.Keys(batch, 4, 12345UL));
        // Any subset of the micro-batch, in any order, gets the keys its rows have in the whole.
        Assert.Equal(keys[8..12].Concat(keys[4..8]), RolloutGenerator.Keys([42, 3], 4, 12345UL));
        Assert.Equal(keys[..4], RolloutGenerator.Keys([7], 4, 12345UL));
        // Distinct over seeds (neighbouring ones, as SamplingSeed gives), images and sample indices.
        var all = new[] { 12345UL, 12346UL, 12345UL + 7919UL }
            .SelectMany(seed => RolloutGenerator.Keys([.. Enumerable.Range(0, 200)], 8, seed)).ToArray();
        Assert.Equal(3 * 200 * 8, all.Distinct().Count());
    }

    [Fact]
    public void ConcatenatedRolloutPartsPadShorterRowsPastTheirEos()
    {
        var a = new RolloutBatch([1], 2, [[0, 5, 1], [0, 1, 0]], ["a", ""], [-1f, -2f], [2, 1], 3);
        var b = new RolloutBatch([2], 2, [[0, 6, 7, 1], [0, 8, 9, 9]], ["b", "c"], [-3f, -4f], [3, 3], 3);
        var c = RolloutBatch.Concat([a, b], padId: 0);
        Assert.Equal([1, 2], c.ImageIndices);
        Assert.Equal(2, c.K);
        Assert.All(c.Sequences, row => Assert.Equal(4, row.Length));
        Assert.Equal([0L, 5, 1, 0], c.Sequences[0]);
        Assert.Equal([0L, 8, 9, 9], c.Sequences[3]);
        Assert.Equal(["a", "", "b", "c"], c.Captions);
        Assert.Equal([-1f, -2f, -3f, -4f], c.BehaviourLogProbs);
        Assert.Throws<ArgumentException>(() => RolloutBatch.Concat([a, b with { PolicyVersion = 4 }], 0));
    }

    [Fact]
    public void GradientDescentRaisesCaptionsThatBeatTheBaseline()
    {
        using var scope = NewDisposeScope();
        var logits = zeros(2, 4, requires_grad: true); // two captions of one token each, 4-word vocabulary
        var chosen = tensor(new long[] { 1, 2 });
        var lp = nn.functional.log_softmax(logits, 1).gather(1, chosen.unsqueeze(1));
        var loss = ScstLoss.Compute(lp, ones(2, 1), tensor(new float[] { 1f, -1f }), LossNormalization.Sum);
        loss.backward();
        var g = logits.grad!;
        Assert.True(g[0, 1].item<float>() < 0); // descent increases the logit of the rewarded caption's token
        Assert.True(g[1, 2].item<float>() > 0); // and decreases it for the caption below the baseline
    }

    [Fact]
    public void DataCursorDrawsEveryImageOncePerEpochInASeededOrder()
    {
        var c = new DataCursor(10, seed: 3);
        var epoch0 = Enumerable.Range(0, 4).SelectMany(_ => c.Next(3)).ToList(); // 3+3+3+1
        Assert.Equal(Enumerable.Range(0, 10), epoch0.Order());
        Assert.Equal(1, c.Next(3).Length > 0 ? c.Epoch : -1);
        Assert.Equal(DataCursor.EpochOrder(10, 3, 0), epoch0);
        Assert.NotEqual(DataCursor.EpochOrder(10, 3, 0), DataCursor.EpochOrder(10, 3, 1));
        var resumed = new DataCursor(10, 3, epoch: 0, position: 6);
        Assert.Equal(epoch0.Skip(6).Take(3), resumed.Next(3));
    }
}
