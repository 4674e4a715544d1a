using System.Text.Json.Nodes;
using Scst.Model.Blip2;
using Scst.Model.Generation;
using Scst.Model.T5;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Model.Checkpoints;

/// <summary>One compared output: its max |diff| (float outputs) or whether the token sequences are identical.</summary>
public sealed record CheckItem(string Name, double MaxAbsDiff, bool IsSequence, bool Ok, string? Detail = null);

/// <summary>
/// Runs the inputs of a <c>reference.json</c> in the HF fixture format through a loaded model and compares every
/// output (T5: loss, logits, encoder state, embeds path, beam and greedy generation; BLIP-2: vision, Q-Former,
/// projection, loss, logits, beam search).
/// </summary>
public static class ReferenceCheck
{
    public const double DefaultTolerance = 1e-4;

    /// <param name="maxNewTokens">generation length the reference used; the fixture format's are 8 (T5) and 6 (BLIP-2).</param>
    public static List<CheckItem> Run(nn.Module model, string referencePath, double tolerance = DefaultTolerance, int? maxNewTokens = null)
    {
        if (!File.Exists(referencePath)) throw new FileNotFoundException($"reference file '{referencePath}' does not exist.", referencePath);
        JsonObject r;
        try { r = JsonNode.Parse(File.ReadAllText(referencePath))?.AsObject() ?? throw new InvalidDataException("empty"); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException)
        { throw new InvalidDataException($"{referencePath}: not a JSON object ({e.Message}).", e); }
        using var scope = NewDisposeScope();
        model.eval();
        return model switch
        {
            T5ForConditionalGeneration t5 => CheckT5(t5, r, referencePath, tolerance, maxNewTokens),
            Blip2T5 b => CheckBlip2(b, r, referencePath, tolerance, maxNewTokens),
            _ => throw new NotSupportedException($"no reference check for {model.GetType().Name}"),
        };
    }

    private static JsonNode Need(JsonObject r, string key, string path) =>
        r[key] ?? throw new InvalidDataException($"{path}: no '{key}' key.");

    private static void Flatten(JsonNode node, List<long> shape, List<double> values, int depth)
    {
        if (node is JsonArray a)
        {
            if (shape.Count == depth) shape.Add(a.Count);
            foreach (var x in a) Flatten(x!, shape, values, depth + 1);
        }
        else values.Add(node.GetValue<double>());
    }

    /// <summary>A nested JSON array as a float32 (or int64) tensor.</summary>
    public static Tensor ToTensor(JsonNode node, ScalarType dtype)
    {
        var shape = new List<long>(); var values = new List<double>();
        Flatten(node, shape, values, 0);
        var t = dtype == ScalarType.Int64 ? tensor(values.Select(v => (long)v).ToArray()) : tensor(values.Select(v => (float)v).ToArray());
        return t.reshape(shape.ToArray());
    }

    private static CheckItem Float(string name, Tensor actual, JsonNode expected, double tol)
    {
        var e = ToTensor(expected, ScalarType.Float32);
        var a = actual.detach().cpu().to(ScalarType.Float32);
        if (!a.shape.SequenceEqual(e.shape))
            return new CheckItem(name, double.PositiveInfinity, false, false, $"shape [{string.Join(",", a.shape)}] vs expected [{string.Join(",", e.shape)}]");
        var d = a.NumberOfElements == 0 ? 0 : (a - e).abs().max().item<float>();
        return new CheckItem(name, d, false, d <= tol);
    }

    private static CheckItem Tokens(string name, Tensor actual, JsonNode expected)
    {
        var e = ToTensor(expected, ScalarType.Int64);
        var a = actual.cpu();
        var same = a.shape.SequenceEqual(e.shape) && a.data<long>().ToArray().SequenceEqual(e.data<long>().ToArray());
        return new CheckItem(name, same ? 0 : double.PositiveInfinity, true, same,
            same ? null : $"got [{string.Join(",", a.shape)}] {Show(a)} expected [{string.Join(",", e.shape)}] {Show(e)}");
    }

    private static string Show(Tensor t) => string.Join(" | ", Enumerable.Range(0, (int)t.shape[0]).Select(i => string.Join(",", t[i].data<long>().ToArray())));

    private static List<CheckItem> CheckT5(T5ForConditionalGeneration m, JsonObject r, string path, double tol, int? maxNewTokens)
    {
        using var _ = no_grad();
        var items = new List<CheckItem>();
        var ids = ToTensor(Need(r, "input_ids", path), ScalarType.Int64);
        var mask = ToTensor(Need(r, "attention_mask", path), ScalarType.Int64);
        var labels = ToTensor(Need(r, "labels", path), ScalarType.Int64);
        var (loss, logits) = m.Forward(ids, null, mask, labels);
        items.Add(Float("loss", loss!, Need(r, "loss", path), tol));
        items.Add(Float("logits", logits, Need(r, "logits", path), tol));
        items.Add(Float("encoder_last_hidden_state", m.Encode(ids, null, mask), Need(r, "encoder_last_hidden_state", path), tol));
        var embeds = ToTensor(Need(r, "inputs_embeds", path), ScalarType.Float32);
        var emask = ToTensor(Need(r, "inputs_embeds_mask", path), ScalarType.Int64);
        var decIn = ToTensor(Need(r, "decoder_input_ids", path), ScalarType.Int64);
        items.Add(Float("logits_from_embeds", m.Forward(null, embeds, emask, decoderInputIds: decIn).Logits, Need(r, "logits_from_embeds", path), tol));
        foreach (var src in new[] { "from_ids", "from_embeds" })
        {
            if (r[src] is not JsonObject g) continue;
            var (enc, em) = src == "from_ids" ? (m.Encode(ids, null, mask), mask) : (m.Encode(null, embeds, emask), emask);
            var beams = g["beam_sequences"] is JsonArray bs ? bs.Count / Math.Max(1, (int)enc.shape[0]) : 3;
            var maxNew = maxNewTokens ?? 8;
            using (var beam = Seq2SeqGeneration.Generate(m, enc, em, new GenerationOptions { NumBeams = beams, NumReturnSequences = beams, MaxNewTokens = maxNew }))
            {
                items.Add(Tokens($"{src}.beam_sequences", beam.Sequences, Need(g, "beam_sequences", path)));
                items.Add(Float($"{src}.beam_sequences_scores", beam.SequenceScores, Need(g, "beam_sequences_scores", path), tol));
                items.Add(Float($"{src}.beam_transition_scores", beam.TokenLogProbs, Need(g, "beam_transition_scores", path), tol));
            }
            using (var greedy = Seq2SeqGeneration.Generate(m, enc, em, new GenerationOptions { MaxNewTokens = maxNew }))
            {
                items.Add(Tokens($"{src}.greedy_sequences", greedy.Sequences, Need(g, "greedy_sequences", path)));
                items.Add(Float($"{src}.greedy_transition_logprobs", greedy.TokenLogProbs, Need(g, "greedy_transition_logprobs", path), tol));
            }
        }
        return items;
    }

    private static List<CheckItem> CheckBlip2(Blip2T5 m, JsonObject r, string path, double tol, int? maxNewTokens)
    {
        using var _ = no_grad();
        var items = new List<CheckItem>();
        var pix = ToTensor(Need(r, "pixel_values", path), ScalarType.Float32);
        var ids = r["input_ids"] is JsonNode n ? ToTensor(n, ScalarType.Int64) : null;
        var labels = ToTensor(Need(r, "labels", path), ScalarType.Int64);
        var (vision, qformer, projected) = m.EncodeImage(pix);
        items.Add(Float("vision_last_hidden_state", vision, Need(r, "vision_last_hidden_state", path), tol));
        items.Add(Float("qformer_last_hidden_state", qformer, Need(r, "qformer_last_hidden_state", path), tol));
        items.Add(Float("language_projection", projected, Need(r, "language_projection", path), tol));
        var (loss, logits) = m.Forward(pix, ids, null, labels);
        items.Add(Float("loss", loss, Need(r, "loss", path), tol));
        items.Add(Float("logits", logits, Need(r, "logits", path), tol));
        if (r["beam_sequences"] is JsonArray bs)
        {
            var beams = bs.Count / (int)pix.shape[0];
            var maxNew = maxNewTokens ?? 6;
            using var g = m.Generate(pix, ids, null, new GenerationOptions { NumBeams = beams, NumReturnSequences = beams, MaxNewTokens = maxNew });
            items.Add(Tokens("beam_sequences", g.Sequences, bs));
            if (r["beam_sequences_scores"] is JsonNode sc) items.Add(Float("beam_sequences_scores", g.SequenceScores, sc, tol));
        }
        return items;
    }
}
