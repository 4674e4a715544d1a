using System.Text.Json.Nodes;
using Scst.Model.Checkpoints;
using Scst.Model.Generation;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>
/// transformers' own outputs for repetition_penalty / length_penalty / min_length / early_stopping on the tiny T5
/// fixtures, written by tests/data/decoding/make_decoding_reference.py where transformers runs. Skipped while that
/// file has not been generated (this machine has no transformers); the formula and oracle tests cover the semantics.
/// </summary>
public class DecodingHfParityTests
{
    private const double Tol = 1e-4;
    private static readonly string Reference = Path.Combine(AppContext.BaseDirectory, "data", "decoding", "reference.json");
    public DecodingHfParityTests() => TorchRuntime.Initialize();

    [SkippableFact]
    public void NewDecodingOptionsMatchTransformers()
    {
        Skip.IfNot(File.Exists(Reference), "tests/data/decoding/reference.json not generated yet (needs transformers: make_decoding_reference.py)");
        var doc = JsonNode.Parse(File.ReadAllText(Reference))!.AsObject();
        var maxNew = doc["max_new_tokens"]!.GetValue<int>();
        foreach (var c in doc["cases"]!.AsArray().Select(x => x!.AsObject()))
        {
            using var scope = NewDisposeScope();
            var name = c["model"]!.GetValue<string>();
            var opt = c["options"]!.AsObject();
            var r = Fixture.Reference(name);
            using var m = HfCheckpoint.LoadT5(Fixture.Dir(name));
            var ids = Fixture.Longs(r["input_ids"]!); var am = Fixture.Longs(r["attention_mask"]!);
            using var _ = no_grad();
            var enc = m.Encode(ids, null, am);
            double Num(string k, double d) => opt[k] is { } v ? v.GetValue<double>() : d;
            var beams = (int)Num("num_beams", 1);
            var early = opt["early_stopping"] switch
            {
                null => EarlyStopping.False,
                var v when v.GetValueKind() == System.Text.Json.JsonValueKind.String => EarlyStopping.Never,
                var v => v.GetValue<bool>() ? EarlyStopping.True : EarlyStopping.False,
            };
            var o = new GenerationOptions
            {
                NumBeams = beams, NumReturnSequences = (int)Num("num_return_sequences", 1), MaxNewTokens = maxNew,
                RepetitionPenalty = Num("repetition_penalty", 1.0), LengthPenalty = Num("length_penalty", 1.0),
                MinLength = (int)Num("min_length", 0), EarlyStopping = early,
            };
            using var g = Seq2SeqGeneration.Generate(m, enc, am, o);
            var what = $"{name} {opt.ToJsonString()}";
            var expected = Fixture.Longs(c["sequences"]!);
            Assert.True(expected.shape.SequenceEqual(g.Sequences.shape), $"{what}: shape");
            Assert.True(expected.data<long>().SequenceEqual(g.Sequences.data<long>()), $"{what}: sequences");
            Assert.True(Fixture.MaxDiff(g.TokenLogProbs, Fixture.Floats(c["transition_scores"]!)) <= Tol, $"{what}: transition scores");
            if (beams > 1)
                Assert.True(Fixture.MaxDiff(g.SequenceScores, Fixture.Floats(c["sequences_scores"]!)) <= Tol, $"{what}: sequences_scores");
        }
    }
}
