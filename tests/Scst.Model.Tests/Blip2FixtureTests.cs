using Scst.Model.Blip2;
using Scst.Model.Checkpoints;
using Scst.Model.Generation;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>The BLIP-2 (T5) fixture: vision, Q-Former, projection, loss, logits and beam search.</summary>
public class Blip2FixtureTests
{
    private const double Tol = 1e-4;
    private const string Name = "blip2_t5_tiny";
    public Blip2FixtureTests() => TorchRuntime.Initialize();

    [Fact]
    public void IntermediatesLossAndLogitsMatchHf()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var r = Fixture.Reference(Name);
        using var m = HfCheckpoint.LoadBlip2T5(Fixture.Dir(Name));
        var pix = Fixture.Floats(r["pixel_values"]!);
        var (vision, qformer, projected) = m.EncodeImage(pix);
        Assert.True(Fixture.MaxDiff(vision, Fixture.Floats(r["vision_last_hidden_state"]!)) <= Tol);
        Assert.True(Fixture.MaxDiff(qformer, Fixture.Floats(r["qformer_last_hidden_state"]!)) <= Tol);
        Assert.True(Fixture.MaxDiff(projected, Fixture.Floats(r["language_projection"]!)) <= Tol);
        var (loss, logits) = m.Forward(pix, Fixture.Longs(r["input_ids"]!), null, Fixture.Longs(r["labels"]!));
        Assert.True(Fixture.MaxDiff(logits, Fixture.Floats(r["logits"]!)) <= Tol);
        Assert.True(Math.Abs(loss.item<float>() - r["loss"]!.GetValue<double>()) <= Tol);
    }

    [Fact]
    public void BeamSearchMatchesHf()
    {
        using var scope = NewDisposeScope();
        var r = Fixture.Reference(Name);
        using var m = HfCheckpoint.LoadBlip2T5(Fixture.Dir(Name));
        using var g = m.Generate(Fixture.Floats(r["pixel_values"]!), Fixture.Longs(r["input_ids"]!), null,
            new GenerationOptions { NumBeams = 3, NumReturnSequences = 3, MaxNewTokens = 6 });
        var expected = Fixture.Longs(r["beam_sequences"]!);
        Assert.Equal(expected.shape, g.Sequences.shape);
        Assert.Equal(expected.data<long>().ToArray(), g.Sequences.data<long>().ToArray());
        Assert.True(Fixture.MaxDiff(g.SequenceScores, Fixture.Floats(r["beam_sequences_scores"]!)) <= Tol);
    }

    [Fact]
    public void PrependedQueriesEqualPlaceholderReplacementWhenPlaceholdersLead()
    {
        // LAVIS prepends the projected queries; with the placeholders at the front both paths build the same encoder input.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var r = Fixture.Reference(Name);
        using var m = HfCheckpoint.LoadBlip2T5(Fixture.Dir(Name));
        var pix = Fixture.Floats(r["pixel_values"]!);
        var ids = Fixture.Longs(r["input_ids"]!);
        var prompt = ids.narrow(1, 4, 3);
        var (a, maskA) = m.BuildEncoderInputs(pix, ids, null);
        var (b, maskB) = m.BuildEncoderInputs(pix, prompt, null);
        Assert.True(Fixture.MaxDiff(a, b) == 0);
        Assert.Equal(maskA.data<long>().ToArray(), maskB.data<long>().ToArray());
        var (loss, _) = m.Forward(pix, prompt, null, Fixture.Longs(r["labels"]!));
        Assert.True(Math.Abs(loss.item<float>() - r["loss"]!.GetValue<double>()) <= Tol);
    }
}
