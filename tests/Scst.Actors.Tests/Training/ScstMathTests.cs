using Scst.Actors.Training;
using static TorchSharp.torch;

namespace Scst.Actors.Tests.Training;

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
        Assert.Equal(-(-6.0 / 3 * 2 + -1.0 / 2 * -1) / 2, ScstLoss.Compute(lp, mask, adv, "length_mean").item<float>(), 5);
        Assert.Equal(-(-6.0 * 2 + -1.0 * -1) / 2, ScstLoss.Compute(lp, mask, adv, "sum").item<float>(), 5);
        Assert.Equal(-(-6.0 * 2 + -1.0 * -1) / 5, ScstLoss.Compute(lp, mask, adv, "token_mean").item<float>(), 5);
        var isw = tensor(new float[] { 0.5f, 1f });
        Assert.Equal(-(-6.0 * 2 * 0.5 + -1.0 * -1) / 2, ScstLoss.Compute(lp, mask, adv, "sum", isw).item<float>(), 5);
        Assert.Throws<ArgumentException>(() => ScstLoss.Compute(lp, mask, adv, "mean"));
    }

    [Fact]
    public void GradientDescentRaisesCaptionsThatBeatTheBaseline()
    {
        using var scope = NewDisposeScope();
        var logits = zeros(2, 4, requires_grad: true); // two captions of one token each, 4-word vocabulary
        var chosen = tensor(new long[] { 1, 2 });
        var lp = nn.functional.log_softmax(logits, 1).gather(1, chosen.unsqueeze(1));
        var loss = ScstLoss.Compute(lp, ones(2, 1), tensor(new float[] { 1f, -1f }), "sum");
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
