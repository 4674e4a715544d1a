using Scst.Model.Checkpoints;
using Scst.Model.Generation;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Scst.Model.Tests;

/// <summary>
/// The decoding options of LAVIS captioning with transformers' semantics, on hand-checked logits: repetition penalty
/// (RepetitionPenaltyLogitsProcessor), min_length (MinLengthLogitsProcessor, start token counted), temperature and
/// nucleus filtering (TemperatureLogitsWarper, TopPLogitsWarper with min_tokens_to_keep = 1).
/// </summary>
public class GenerationOptionsTests
{
    public GenerationOptionsTests() => TorchRuntime.Initialize();

    private static float[] Row(Tensor t) => t.to(ScalarType.Float32).data<float>().ToArray();

    [Fact]
    public void RepetitionPenaltyDividesPositiveAndMultipliesNegativeScoresOncePerPresentId()
    {
        using var scope = NewDisposeScope();
        var scores = tensor(new float[] { 2f, -1f, 0.5f, -3f, 1f, 0f, 4f, -2f }).reshape(2, 4);
        // Row 0 holds id 1 twice (penalised once: -1·2, not -1·4) and id 0; row 1 holds ids 1 (score 0) and 3.
        var ids = tensor(new long[] { 0, 1, 1, 1, 3, 1 }).reshape(2, 3);
        Assert.Equal(new[] { 1f, -2f, 0.5f, -3f, 1f, 0f, 4f, -4f }, Row(Seq2SeqGeneration.RepetitionPenalty(scores, ids, 2.0)));
        // p < 1 rewards repeats: positives grow, negatives shrink towards 0.
        Assert.Equal(new[] { 4f, -0.5f, 0.5f, -3f, 1f, 0f, 4f, -1f }, Row(Seq2SeqGeneration.RepetitionPenalty(scores, ids, 0.5)));
        // The input is not modified.
        Assert.Equal(new[] { 2f, -1f, 0.5f, -3f, 1f, 0f, 4f, -2f }, Row(scores));
    }

    [Fact]
    public void RepetitionPenaltyOnBeamLogProbsMakesThemMoreNegativeAndKeepsMinusInfinity()
    {
        using var scope = NewDisposeScope();
        // Beam search applies the processor to log-softmax scores (all ≤ 0): every present id is multiplied by p.
        var logp = tensor(new float[] { -0.5f, float.NegativeInfinity, -2f, -0.1f }).reshape(1, 4);
        var ids = tensor(new long[] { 0, 1, 2 }).reshape(1, 3);
        var r = Row(Seq2SeqGeneration.RepetitionPenalty(logp, ids, 1.5));
        Assert.Equal(-0.75f, r[0], 6);
        Assert.True(float.IsNegativeInfinity(r[1]));
        Assert.Equal(-3f, r[2], 6);
        Assert.Equal(-0.1f, r[3], 6);
    }

    [Fact]
    public void ProcessScoresWithPenaltyOneLeavesScoresUntouched()
    {
        using var scope = NewDisposeScope();
        var scores = tensor(new float[] { 2f, -1f, 0.5f }).reshape(1, 3);
        var ids = tensor(new long[] { 0, 1 }).reshape(1, 2);
        var o = new GenerationOptions();
        Assert.Equal(new[] { 2f, -1f, 0.5f }, Row(Seq2SeqGeneration.ProcessScores(scores.clone(), ids, 0, o, eos: 2)));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 0)]
    [InlineData(2, 1)]
    [InlineData(5, 4)]
    [InlineData(8, 7)]
    public void MinLengthBansEosForExactlyMinLengthMinusOneStepsBecauseTheStartTokenCounts(int minLength, int bannedSteps)
    {
        using var scope = NewDisposeScope();
        var o = new GenerationOptions { MinLength = minLength };
        for (long step = 0; step < 12; step++)
        {
            Assert.Equal(step < bannedSteps, o.SuppressesEos(step));
            // The processor itself: the decoder input at this step holds step + 1 ids (start token included).
            var ids = zeros(1, step + 1, dtype: ScalarType.Int64);
            var s = Row(Seq2SeqGeneration.ProcessScores(tensor(new float[] { 0.3f, 0.2f, 0.1f }).reshape(1, 3), ids, step, o, eos: 1));
            Assert.Equal(step < bannedSteps, float.IsNegativeInfinity(s[1]));
            Assert.Equal(0.3f, s[0]);
        }
    }

    [Fact]
    public void MinNewTokensBansEosForExactlyThatManySteps()
    {
        var o = new GenerationOptions { MinNewTokens = 3 };
        Assert.Equal(new[] { true, true, true, false, false }, Enumerable.Range(0, 5).Select(s => o.SuppressesEos(s)).ToArray());
    }

    [Fact]
    public void TemperatureDividesTheLogits()
    {
        using var scope = NewDisposeScope();
        var logits = tensor(new float[] { 2f, -1f, 0.5f }).reshape(1, 3);
        Assert.Equal(new[] { 4f, -2f, 1f }, Row(Seq2SeqGeneration.WarpLogits(logits, 0.5, 0, 1.0)));
        Assert.Equal(new[] { 1f, -0.5f, 0.25f }, Row(Seq2SeqGeneration.WarpLogits(logits, 2.0, 0, 1.0)));
    }

    private static Tensor LogProbs(params double[] p) => tensor(p.Select(x => (float)Math.Log(x)).ToArray()).reshape(1, p.Length);

    private static bool[] Kept(Tensor warped) => warped.isfinite().data<bool>().ToArray();

    [Theory]
    // probs 0.5, 0.3, 0.15, 0.05 (shuffled): keep the smallest most-probable set whose mass reaches top_p.
    [InlineData(0.45, new[] { false, true, false, false })]   // 0.5 alone ≥ 0.45
    [InlineData(0.65, new[] { true, true, false, false })]    // 0.5 < 0.65 ≤ 0.8
    [InlineData(0.85, new[] { true, true, false, true })]     // 0.8 < 0.85 ≤ 0.95
    [InlineData(0.97, new[] { true, true, true, true })]      // 0.95 < 0.97
    [InlineData(0.01, new[] { false, true, false, false })]   // min_tokens_to_keep = 1: the top token always stays
    public void TopPKeepsTheSmallestSetWhoseCumulativeProbabilityReachesTopP(double topP, bool[] kept)
    {
        using var scope = NewDisposeScope();
        var logits = LogProbs(0.3, 0.5, 0.05, 0.15);
        Assert.Equal(kept, Kept(Seq2SeqGeneration.WarpLogits(logits, 1.0, 0, topP)));
    }

    [Fact]
    public void TopPKeepsOneOfTwoTiedTokensWhenTheSetIsReachedInsideTheTie()
    {
        using var scope = NewDisposeScope();
        // 0.4 alone < 0.5; 0.4 + 0.3 ≥ 0.5: HF sorts ascending and drops the prefix with cumulative mass ≤ 1 − top_p,
        // so exactly one of the two 0.3 tokens survives.
        var kept = Kept(Seq2SeqGeneration.WarpLogits(LogProbs(0.3, 0.4, 0.3), 1.0, 0, 0.5));
        Assert.True(kept[1]);
        Assert.Equal(2, kept.Count(k => k));
    }

    [Fact]
    public void TemperatureIsAppliedBeforeTopP()
    {
        using var scope = NewDisposeScope();
        var logits = LogProbs(0.5, 0.3, 0.15, 0.05);
        // T = 1: 0.5 < 0.65, two tokens. T = 0.5 squares the probabilities: 0.25/0.365 = 0.685 ≥ 0.65, one token.
        Assert.Equal(new[] { true, true, false, false }, Kept(Seq2SeqGeneration.WarpLogits(logits, 1.0, 0, 0.65)));
        Assert.Equal(new[] { true, false, false, false }, Kept(Seq2SeqGeneration.WarpLogits(logits, 0.5, 0, 0.65)));
    }

    [Fact]
    public void TopKIsAppliedBeforeTopPOnTheTopKRenormalisedMass()
    {
        using var scope = NewDisposeScope();
        // Top-2 of (0.5, 0.3, 0.15, 0.05) renormalises to (0.625, 0.375): top_p 0.6 then keeps the first alone.
        var logits = LogProbs(0.5, 0.3, 0.15, 0.05);
        Assert.Equal(new[] { true, false, false, false }, Kept(Seq2SeqGeneration.WarpLogits(logits, 1.0, 2, 0.6)));
        Assert.Equal(new[] { true, true, false, false }, Kept(Seq2SeqGeneration.WarpLogits(logits, 1.0, 0, 0.6)));
    }

    [Theory]
    [InlineData(0.0, "RepetitionPenalty")]
    [InlineData(-1.0, "RepetitionPenalty")]
    public void NonPositiveRepetitionPenaltyIsRefused(double p, string name)
    {
        var e = Assert.Throws<ArgumentException>(() => new GenerationOptions { RepetitionPenalty = p }.Validate());
        Assert.Contains(name, e.Message);
    }

    [Fact]
    public void SamplingSettingsOutOfRangeAndTwoLowerBoundsAreRefused()
    {
        Assert.Contains("TopP", Assert.Throws<ArgumentException>(() => new GenerationOptions { DoSample = true, TopP = 0 }.Validate()).Message);
        Assert.Contains("TopP", Assert.Throws<ArgumentException>(() => new GenerationOptions { DoSample = true, TopP = 1.5 }.Validate()).Message);
        Assert.Contains("Temperature", Assert.Throws<ArgumentException>(() => new GenerationOptions { DoSample = true, Temperature = 0 }.Validate()).Message);
        Assert.Contains("not both", Assert.Throws<ArgumentException>(() => new GenerationOptions { MinLength = 3, MinNewTokens = 2 }.Validate()).Message);
        Assert.Contains("LengthPenalty", Assert.Throws<ArgumentException>(() => new GenerationOptions { LengthPenalty = double.NaN }.Validate()).Message);
        new GenerationOptions { LengthPenalty = -2, RepetitionPenalty = 0.5, MinLength = 4 }.Validate();
    }

    [Fact]
    public void GreedyWithRepetitionPenaltyTakesTheArgmaxOfThePenalisedLogits()
    {
        using var scope = NewDisposeScope();
        var r = Fixture.Reference("t5_v11_untied");
        using var m = HfCheckpoint.LoadT5(Fixture.Dir("t5_v11_untied"));
        var ids = Fixture.Longs(r["input_ids"]!); var am = Fixture.Longs(r["attention_mask"]!);
        using var _ = no_grad();
        var enc = m.Encode(ids, null, am);
        const double p = 3.0;
        using var g = Seq2SeqGeneration.Generate(m, enc, am, new GenerationOptions { MaxNewTokens = 8, RepetitionPenalty = p, CheckFinishedEvery = 0 });
        // Replay step by step with the full (uncached) decoder: the chosen token is the argmax of the penalised logits,
        // and the token log-prob is the log-softmax of the penalised logits (HF greedy's processed scores).
        var seqs = g.Sequences;
        var mask = g.TokenMask;
        for (long t = 0; t < seqs.shape[1] - 1; t++)
        {
            var logits = m.Decode(enc, am, seqs.narrow(1, 0, t + 1)).select(1, t).to(ScalarType.Float32);
            var processed = Seq2SeqGeneration.RepetitionPenalty(logits, seqs.narrow(1, 0, t + 1), p);
            for (var row = 0; row < seqs.shape[0]; row++)
            {
                if (!mask[row, t].item<bool>()) continue;
                Assert.Equal(processed[row].argmax().item<long>(), seqs[row, t + 1].item<long>());
                var lp = F.log_softmax(processed, 1)[row, seqs[row, t + 1]].item<float>();
                Assert.Equal(lp, g.TokenLogProbs[row, t].item<float>(), 4);
            }
        }
        using var plain = Seq2SeqGeneration.Generate(m, enc, am, new GenerationOptions { MaxNewTokens = 8 });
        Assert.NotEqual(plain.Sequences.data<long>().ToArray(), Pad(g.Sequences, plain.Sequences.shape[1]));
    }

    [Fact]
    public void NucleusSamplingWithATinyTopPIsGreedyAndTheSameSeedReproducesSampling()
    {
        using var scope = NewDisposeScope();
        var r = Fixture.Reference("t5_relu_tied");
        using var m = HfCheckpoint.LoadT5(Fixture.Dir("t5_relu_tied"));
        var ids = Fixture.Longs(r["input_ids"]!); var am = Fixture.Longs(r["attention_mask"]!);
        using var _ = no_grad();
        var enc = m.Encode(ids, null, am);
        var greedyOptions = new GenerationOptions { MaxNewTokens = 8, RepetitionPenalty = 1.4, MinLength = 3 };
        using var greedy = Seq2SeqGeneration.Generate(m, enc, am, greedyOptions);
        long[] Sample(ulong seed, double topP)
        {
            using var gen = new Generator(seed, CPU);
            using var s = Seq2SeqGeneration.Generate(m, enc, am, greedyOptions with { DoSample = true, TopP = topP, TopK = 50, Temperature = 0.7, Generator = gen });
            return Pad(s.Sequences, 9);
        }
        // top_p so small that only the most probable (penalised, EOS-banned) token survives: sampling is greedy.
        Assert.Equal(Pad(greedy.Sequences, 9), Sample(5, 1e-4));
        Assert.Equal(Sample(11, 0.9), Sample(11, 0.9));
    }

    private static long[] Pad(Tensor seqs, long len) =>
        seqs.shape[1] >= len ? seqs.narrow(1, 0, len).contiguous().data<long>().ToArray()
            : cat([seqs, zeros(seqs.shape[0], len - seqs.shape[1], dtype: ScalarType.Int64)], 1).data<long>().ToArray();
}
