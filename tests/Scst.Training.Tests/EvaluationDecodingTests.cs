using Scst.Training;

namespace Scst.Training.Tests;

/// <summary>The run section's evaluation decoding keys reach the decoder as LAVIS's caption task passes them.</summary>
public class EvaluationDecodingTests : IClassFixture<TinyShapes>
{
    private readonly TinyShapes _data;
    public EvaluationDecodingTests(TinyShapes data) => _data = data;

    [Fact]
    public void BeamDecodingCarriesLengthBoundsAndPenalties()
    {
        var run = _data.Ce(extraRun: "  min_len: 4\n  repetition_penalty: 1.15\n  length_penalty: 0\n  top_p: 0.5\n  temperature: 2").Run with { NumBeams = 3 };
        var o = EvaluationDecoding.Options(run, null);
        Assert.False(o.DoSample);
        Assert.Equal(3, o.NumBeams);
        Assert.Equal(1, o.NumReturnSequences);
        Assert.Equal(12, o.MaxNewTokens);
        Assert.Equal(4, o.MinLength);             // HF min_length, not min_new_tokens
        Assert.Equal(0, o.MinNewTokens);
        Assert.Equal(1.15, o.RepetitionPenalty);
        Assert.Equal(0.0, o.LengthPenalty);
        // top_p and temperature only act under sampling, as in transformers' beam search.
        Assert.Equal(1.0, o.TopP);
        Assert.Equal(1.0, o.Temperature);

        var g = EvaluationDecoding.Greedy(run);
        Assert.Equal((1, 12, 4, 1.15), (g.NumBeams, g.MaxNewTokens, g.MinLength, g.RepetitionPenalty));
        Assert.False(g.DoSample);
    }

    [Fact]
    public void NucleusSamplingUsesTopPTemperatureAndTransformersDefaultTopK()
    {
        var run = _data.Ce(extraRun: "  use_nucleus_sampling: true\n  top_p: 0.8\n  temperature: 0.7\n  repetition_penalty: 1.2\n  min_len: 3").Run;
        var o = EvaluationDecoding.Options(run, null);
        Assert.True(o.DoSample);
        Assert.Equal(1, o.NumBeams);
        Assert.Equal(0.8, o.TopP);
        Assert.Equal(0.7, o.Temperature);
        Assert.Equal(50, o.TopK);
        Assert.Equal(1.2, o.RepetitionPenalty);
        Assert.Equal(3, o.MinLength);
    }

    [Fact]
    public void NucleusEvaluationIsReproducibleFromTheRunSeedAndDiffersFromBeamSearch()
    {
        var ce = _data.Ce(extraRun: "  use_nucleus_sampling: true\n  top_p: 0.95\n  temperature: 1.5");
        using var t = TinyShapes.Trainer(ce, new TrainerOptions(_data.RunDir("nucleus-eval")));
        var a = SplitEvaluator.Evaluate(t.Learner.Policy, t.Learner.Corpus.Val, ce.Run).Captions;
        var b = SplitEvaluator.Evaluate(t.Learner.Policy, t.Learner.Corpus.Val, ce.Run).Captions;
        Assert.Equal(a, b);
        var otherSeed = SplitEvaluator.Evaluate(t.Learner.Policy, t.Learner.Corpus.Val, ce.Run with { Seed = ce.Run.Seed + 1 }).Captions;
        var greedy = SplitEvaluator.Evaluate(t.Learner.Policy, t.Learner.Corpus.Val, ce.Run with { UseNucleusSampling = false }).Captions;
        // An untrained model at temperature 1.5: sampled captions differ across seeds and from greedy ones.
        Assert.NotEqual(a, otherSeed);
        Assert.NotEqual(a, greedy);
    }
}
