using static TorchSharp.torch;
using System.Text.Json.Nodes;

namespace Scst.Model.T5;

/// <summary>
/// T5 hyper-parameters with Hugging Face <c>T5Config</c> names and defaults (t5-small's).
/// <see cref="DenseActFn"/> is derived from <see cref="FeedForwardProj"/> as HF does ("gated-gelu" means the tanh
/// approximation <c>gelu_new</c>); set it to "gelu" to get LAVIS's exact GELU.
/// </summary>
public sealed record T5Config
{
    public int VocabSize { get; init; } = 32128;
    public int DModel { get; init; } = 512;
    public int DKv { get; init; } = 64;
    public int DFf { get; init; } = 2048;
    public int NumLayers { get; init; } = 6;
    public int NumDecoderLayers { get; init; } = 6;
    public int NumHeads { get; init; } = 8;
    public int RelativeAttentionNumBuckets { get; init; } = 32;
    public int RelativeAttentionMaxDistance { get; init; } = 128;
    public double DropoutRate { get; init; } = 0.1;
    public double LayerNormEpsilon { get; init; } = 1e-6;
    /// <summary>The dtype the parameters are created in (HF's <c>torch_dtype</c>): a frozen bf16 T5 is never materialised in fp32.</summary>
    public ScalarType TorchDType { get; init; } = ScalarType.Float32;
    public double InitializerFactor { get; init; } = 1.0;
    public string FeedForwardProj { get; init; } = "relu";
    /// <summary>Activation of the feed-forward: relu, gelu_new (tanh approximation), gelu (exact), silu.</summary>
    public string DenseActFn { get; init; } = "relu";
    public bool IsGatedAct { get; init; }
    /// <summary>Head shares <c>shared.weight</c> (no <c>lm_head.weight</c> tensor).</summary>
    public bool TieWordEmbeddings { get; init; } = true;
    /// <summary>Decoder output × d_model^-0.5 before the head (original T5's tied head).</summary>
    public bool ScaleDecoderOutputs { get; init; } = true;
    public int PadTokenId { get; init; }
    public int EosTokenId { get; init; } = 1;
    public int DecoderStartTokenId { get; init; }

    public int InnerDim => NumHeads * DKv;

    /// <summary>A config for <paramref name="feedForwardProj"/> ("relu", "gated-gelu", "gated-silu", ...) with HF's derivation.</summary>
    public static (string act, bool gated) ParseFeedForwardProj(string feedForwardProj)
    {
        var parts = feedForwardProj.Split('-');
        var gated = parts[0] == "gated";
        if ((parts.Length > 1 && !gated) || parts.Length > 2)
            throw new ArgumentException($"feed_forward_proj '{feedForwardProj}' is not valid: expected 'ACT' or 'gated-ACT' (e.g. 'relu', 'gated-gelu').");
        var act = parts[^1];
        if (feedForwardProj == "gated-gelu") act = "gelu_new";
        return (act, gated);
    }

    /// <summary>Reads an HF <c>config.json</c> object (T5 or a BLIP-2 <c>text_config</c>). Applies HF 4.x/5.x head rules.</summary>
    public static T5Config FromJson(JsonObject j, string source = "config.json")
    {
        T Get<T>(string key, T fallback)
        {
            var n = j[key];
            if (n is null) return fallback;
            try { return n.GetValue<T>(); }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            { throw new InvalidDataException($"{source}: key '{key}' = {n.ToJsonString()} is not a {typeof(T).Name}.", e); }
        }
        var d = new T5Config();
        var ff = Get("feed_forward_proj", d.FeedForwardProj);
        var (act, gated) = ParseFeedForwardProj(ff);
        var dModel = Get("d_model", d.DModel);
        var tie = Get("tie_word_embeddings", true);
        // transformers 5.x writes scale_decoder_outputs; 4.x configs lack it and a tied head implied the rescale.
        var scale = j["scale_decoder_outputs"] is null ? tie : Get("scale_decoder_outputs", tie);
        var numLayers = Get("num_layers", d.NumLayers);
        return new T5Config
        {
            VocabSize = Get("vocab_size", d.VocabSize),
            DModel = dModel,
            DKv = Get("d_kv", d.DKv),
            DFf = Get("d_ff", d.DFf),
            NumLayers = numLayers,
            NumDecoderLayers = j["num_decoder_layers"] is null ? numLayers : Get("num_decoder_layers", numLayers),
            NumHeads = Get("num_heads", d.NumHeads),
            RelativeAttentionNumBuckets = Get("relative_attention_num_buckets", d.RelativeAttentionNumBuckets),
            RelativeAttentionMaxDistance = Get("relative_attention_max_distance", d.RelativeAttentionMaxDistance),
            DropoutRate = Get("dropout_rate", d.DropoutRate),
            LayerNormEpsilon = Get("layer_norm_epsilon", d.LayerNormEpsilon),
            InitializerFactor = Get("initializer_factor", d.InitializerFactor),
            FeedForwardProj = ff,
            // HF ignores a saved dense_act_fn; our own key keeps LAVIS's exact GELU across a save/load.
            DenseActFn = j["scst_dense_act_fn"] is null ? act : Get("scst_dense_act_fn", act),
            IsGatedAct = gated,
            TieWordEmbeddings = tie,
            ScaleDecoderOutputs = scale,
            PadTokenId = Get("pad_token_id", d.PadTokenId),
            EosTokenId = Get("eos_token_id", d.EosTokenId),
            DecoderStartTokenId = Get("decoder_start_token_id", d.DecoderStartTokenId),
        };
    }

    /// <summary>The config as HF transformers 5.x writes it (so our checkpoints reload in HF and here).</summary>
    public JsonObject ToJson() => new()
    {
        ["architectures"] = new JsonArray("T5ForConditionalGeneration"),
        ["model_type"] = "t5",
        ["vocab_size"] = VocabSize, ["d_model"] = DModel, ["d_kv"] = DKv, ["d_ff"] = DFf,
        ["num_layers"] = NumLayers, ["num_decoder_layers"] = NumDecoderLayers, ["num_heads"] = NumHeads,
        ["relative_attention_num_buckets"] = RelativeAttentionNumBuckets,
        ["relative_attention_max_distance"] = RelativeAttentionMaxDistance,
        ["dropout_rate"] = DropoutRate, ["layer_norm_epsilon"] = LayerNormEpsilon,
        ["initializer_factor"] = InitializerFactor, ["feed_forward_proj"] = FeedForwardProj,
        ["dense_act_fn"] = DenseActFn, ["scst_dense_act_fn"] = DenseActFn, ["is_gated_act"] = IsGatedAct,
        ["tie_word_embeddings"] = TieWordEmbeddings, ["scale_decoder_outputs"] = ScaleDecoderOutputs,
        ["pad_token_id"] = PadTokenId, ["eos_token_id"] = EosTokenId, ["decoder_start_token_id"] = DecoderStartTokenId,
        ["is_encoder_decoder"] = true,
    };
}
