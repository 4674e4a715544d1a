using static TorchSharp.torch;
using System.Text.Json.Nodes;
using Scst.Model.T5;

namespace Scst.Model.Blip2;

/// <summary>BLIP-2 vision tower hyper-parameters (HF <c>Blip2VisionConfig</c> names and defaults).</summary>
public sealed record Blip2VisionConfig
{
    public int HiddenSize { get; init; } = 1408;
    public int IntermediateSize { get; init; } = 6144;
    public int NumHiddenLayers { get; init; } = 39;
    public int NumAttentionHeads { get; init; } = 16;
    public int ImageSize { get; init; } = 224;
    public int PatchSize { get; init; } = 14;
    public string HiddenAct { get; init; } = "gelu";
    public double LayerNormEps { get; init; } = 1e-6;
    public double AttentionDropout { get; init; }
    public double InitializerRange { get; init; } = 1e-10;
    /// <summary>The dtype the trunk (embeddings, encoder) is created in; <c>post_layernorm</c> is always fp32 (it trains).</summary>
    public ScalarType TorchDType { get; init; } = ScalarType.Float32;
    public int NumPositions => (ImageSize / PatchSize) * (ImageSize / PatchSize) + 1;
}

/// <summary>Q-Former hyper-parameters (HF <c>Blip2QFormerConfig</c>).</summary>
public sealed record Blip2QFormerConfig
{
    public int HiddenSize { get; init; } = 768;
    public int IntermediateSize { get; init; } = 3072;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 12;
    public int CrossAttentionFrequency { get; init; } = 2;
    public int EncoderHiddenSize { get; init; } = 1408;
    public string HiddenAct { get; init; } = "gelu";
    public double LayerNormEps { get; init; } = 1e-12;
    public double HiddenDropoutProb { get; init; } = 0.1;
    public double AttentionProbsDropoutProb { get; init; } = 0.1;
    public double InitializerRange { get; init; } = 0.02;
}

/// <summary>
/// BLIP-2 with a T5 language model. With <see cref="ImageTokenIndex"/> set, prompts carry
/// <see cref="NumQueryTokens"/> placeholder ids that the projected queries replace (transformers ≥ 4.47);
/// without it (or without placeholders in the prompt) the queries are prepended, as LAVIS does.
/// </summary>
public sealed record Blip2Config
{
    public Blip2VisionConfig Vision { get; init; } = new();
    public Blip2QFormerConfig QFormer { get; init; } = new();
    public T5Config Text { get; init; } = new();
    public int NumQueryTokens { get; init; } = 32;
    public int? ImageTokenIndex { get; init; }
    public double InitializerRange { get; init; } = 0.02;

    public static Blip2Config FromJson(JsonObject j, string source = "config.json")
    {
        JsonObject Sub(string key) => j[key] as JsonObject ?? throw new InvalidDataException($"{source}: no '{key}' object.");
        T Get<T>(JsonObject o, string key, T fallback, string where)
        {
            var n = o[key];
            if (n is null) return fallback;
            try { return n.GetValue<T>(); }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            { throw new InvalidDataException($"{source}: key '{where}{key}' = {n.ToJsonString()} is not a {typeof(T).Name}.", e); }
        }
        var v = Sub("vision_config"); var q = Sub("qformer_config"); var t = Sub("text_config");
        var tType = t["model_type"]?.GetValue<string>();
        if (tType is not null && tType != "t5")
            throw new NotSupportedException($"{source}: text_config.model_type is '{tType}'; only T5 language models are supported.");
        var dv = new Blip2VisionConfig(); var dq = new Blip2QFormerConfig();
        return new Blip2Config
        {
            Vision = new Blip2VisionConfig
            {
                HiddenSize = Get(v, "hidden_size", dv.HiddenSize, "vision_config."),
                IntermediateSize = Get(v, "intermediate_size", dv.IntermediateSize, "vision_config."),
                NumHiddenLayers = Get(v, "num_hidden_layers", dv.NumHiddenLayers, "vision_config."),
                NumAttentionHeads = Get(v, "num_attention_heads", dv.NumAttentionHeads, "vision_config."),
                ImageSize = Get(v, "image_size", dv.ImageSize, "vision_config."),
                PatchSize = Get(v, "patch_size", dv.PatchSize, "vision_config."),
                HiddenAct = Get(v, "hidden_act", dv.HiddenAct, "vision_config."),
                LayerNormEps = Get(v, "layer_norm_eps", dv.LayerNormEps, "vision_config."),
                AttentionDropout = Get(v, "attention_dropout", dv.AttentionDropout, "vision_config."),
                InitializerRange = Get(v, "initializer_range", dv.InitializerRange, "vision_config."),
            },
            QFormer = new Blip2QFormerConfig
            {
                HiddenSize = Get(q, "hidden_size", dq.HiddenSize, "qformer_config."),
                IntermediateSize = Get(q, "intermediate_size", dq.IntermediateSize, "qformer_config."),
                NumHiddenLayers = Get(q, "num_hidden_layers", dq.NumHiddenLayers, "qformer_config."),
                NumAttentionHeads = Get(q, "num_attention_heads", dq.NumAttentionHeads, "qformer_config."),
                CrossAttentionFrequency = Get(q, "cross_attention_frequency", dq.CrossAttentionFrequency, "qformer_config."),
                EncoderHiddenSize = Get(q, "encoder_hidden_size", dq.EncoderHiddenSize, "qformer_config."),
                HiddenAct = Get(q, "hidden_act", dq.HiddenAct, "qformer_config."),
                LayerNormEps = Get(q, "layer_norm_eps", dq.LayerNormEps, "qformer_config."),
                HiddenDropoutProb = Get(q, "hidden_dropout_prob", dq.HiddenDropoutProb, "qformer_config."),
                AttentionProbsDropoutProb = Get(q, "attention_probs_dropout_prob", dq.AttentionProbsDropoutProb, "qformer_config."),
                InitializerRange = Get(q, "initializer_range", dq.InitializerRange, "qformer_config."),
            },
            Text = T5Config.FromJson(t, source + " text_config"),
            NumQueryTokens = Get(j, "num_query_tokens", 32, ""),
            ImageTokenIndex = j["image_token_index"] is null ? (j["image_token_id"] is null ? null : Get<int>(j, "image_token_id", 0, "")) : Get<int>(j, "image_token_index", 0, ""),
            InitializerRange = Get(j, "initializer_range", 0.02, ""),
        };
    }

    public JsonObject ToJson()
    {
        var text = Text.ToJson();
        text.Remove("architectures");
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray("Blip2ForConditionalGeneration"),
            ["model_type"] = "blip-2",
            ["num_query_tokens"] = NumQueryTokens,
            ["initializer_range"] = InitializerRange,
            ["is_encoder_decoder"] = true,
            ["vision_config"] = new JsonObject
            {
                ["model_type"] = "blip_2_vision_model",
                ["hidden_size"] = Vision.HiddenSize, ["intermediate_size"] = Vision.IntermediateSize,
                ["num_hidden_layers"] = Vision.NumHiddenLayers, ["num_attention_heads"] = Vision.NumAttentionHeads,
                ["image_size"] = Vision.ImageSize, ["patch_size"] = Vision.PatchSize, ["hidden_act"] = Vision.HiddenAct,
                ["layer_norm_eps"] = Vision.LayerNormEps, ["attention_dropout"] = Vision.AttentionDropout,
                ["initializer_range"] = Vision.InitializerRange, ["qkv_bias"] = true,
            },
            ["qformer_config"] = new JsonObject
            {
                ["model_type"] = "blip_2_qformer",
                ["hidden_size"] = QFormer.HiddenSize, ["intermediate_size"] = QFormer.IntermediateSize,
                ["num_hidden_layers"] = QFormer.NumHiddenLayers, ["num_attention_heads"] = QFormer.NumAttentionHeads,
                ["cross_attention_frequency"] = QFormer.CrossAttentionFrequency, ["encoder_hidden_size"] = QFormer.EncoderHiddenSize,
                ["hidden_act"] = QFormer.HiddenAct, ["layer_norm_eps"] = QFormer.LayerNormEps,
                ["hidden_dropout_prob"] = QFormer.HiddenDropoutProb, ["attention_probs_dropout_prob"] = QFormer.AttentionProbsDropoutProb,
                ["initializer_range"] = QFormer.InitializerRange, ["use_qformer_text_input"] = false,
            },
            ["text_config"] = text,
        };
        if (ImageTokenIndex is int idx) o["image_token_index"] = idx;
        return o;
    }
}
