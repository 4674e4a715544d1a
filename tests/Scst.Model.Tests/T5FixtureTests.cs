using Scst.Model.Checkpoints;
using Scst.Model.Generation;
using Scst.Model.T5;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>Every output of the tiny HF T5 fixtures, reproduced from the loaded checkpoint folders.</summary>
public class T5FixtureTests
{
    private const double Tol = 1e-4;
    public T5FixtureTests() => TorchRuntime.Initialize();

    public static TheoryData<string> Names => new() { "t5_v11_untied", "t5_v11_gated", "t5_relu_tied" };

    [Theory, MemberData(nameof(Names))]
    public void ForwardLossLogitsEncoderAndEmbedsPathMatchHf(string name)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var r = Fixture.Reference(name);
        using var m = HfCheckpoint.LoadT5(Fixture.Dir(name));
        var ids = Fixture.Longs(r["input_ids"]!); var mask = Fixture.Longs(r["attention_mask"]!);
        var labels = Fixture.Longs(r["labels"]!);
        var (loss, logits) = m.Forward(ids, null, mask, labels);
        Assert.True(Fixture.MaxDiff(logits, Fixture.Floats(r["logits"]!)) <= Tol);
        Assert.True(Math.Abs(loss!.item<float>() - r["loss"]!.GetValue<double>()) <= Tol);
        Assert.True(Fixture.MaxDiff(m.Encode(ids, null, mask), Fixture.Floats(r["encoder_last_hidden_state"]!)) <= Tol);
        var decIn = Fixture.Longs(r["decoder_input_ids"]!);
        // The fixture shifted the unmasked labels; where labels are not -100 ours must agree.
        var shifted = T5ForConditionalGeneration.ShiftRight(labels, 0, 0);
        Assert.Equal(decIn.narrow(1, 0, 4).data<long>().ToArray(), shifted.narrow(1, 0, 4).data<long>().ToArray());
        var (_, fromEmbeds) = m.Forward(null, Fixture.Floats(r["inputs_embeds"]!), Fixture.Longs(r["inputs_embeds_mask"]!), decoderInputIds: decIn);
        Assert.True(Fixture.MaxDiff(fromEmbeds, Fixture.Floats(r["logits_from_embeds"]!)) <= Tol);
    }

    [Theory, MemberData(nameof(Names))]
    public void BeamAndGreedyGenerationMatchHf(string name)
    {
        using var scope = NewDisposeScope();
        var r = Fixture.Reference(name);
        using var m = HfCheckpoint.LoadT5(Fixture.Dir(name));
        foreach (var src in new[] { "from_ids", "from_embeds" })
        {
            var g = r[src]!.AsObject();
            using var _ = no_grad();
            var enc = src == "from_ids"
                ? m.Encode(Fixture.Longs(r["input_ids"]!), null, Fixture.Longs(r["attention_mask"]!))
                : m.Encode(null, Fixture.Floats(r["inputs_embeds"]!), Fixture.Longs(r["inputs_embeds_mask"]!));
            var mask = src == "from_ids" ? Fixture.Longs(r["attention_mask"]!) : Fixture.Longs(r["inputs_embeds_mask"]!);
            using var beam = Seq2SeqGeneration.Generate(m, enc, mask, new GenerationOptions { NumBeams = 3, NumReturnSequences = 3, MaxNewTokens = 8 });
            Assert.Equal(Fixture.Longs(g["beam_sequences"]!).data<long>().ToArray(), beam.Sequences.data<long>().ToArray());
            Assert.Equal(Fixture.Longs(g["beam_sequences"]!).shape, beam.Sequences.shape);
            Assert.True(Fixture.MaxDiff(beam.SequenceScores, Fixture.Floats(g["beam_sequences_scores"]!)) <= Tol, $"{name} {src} sequences_scores");
            Assert.True(Fixture.MaxDiff(beam.TokenLogProbs, Fixture.Floats(g["beam_transition_scores"]!)) <= Tol, $"{name} {src} transition scores");
            using var greedy = Seq2SeqGeneration.Generate(m, enc, mask, new GenerationOptions { MaxNewTokens = 8 });
            Assert.Equal(Fixture.Longs(g["greedy_sequences"]!).shape, greedy.Sequences.shape);
            Assert.Equal(Fixture.Longs(g["greedy_sequences"]!).data<long>().ToArray(), greedy.Sequences.data<long>().ToArray());
            Assert.True(Fixture.MaxDiff(greedy.TokenLogProbs, Fixture.Floats(g["greedy_transition_logprobs"]!)) <= Tol, $"{name} {src} greedy logprobs");
        }
    }
}
