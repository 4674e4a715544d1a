using System.Text.Json.Nodes;
using Scst.Model.Blip2;

namespace Scst.Model.Checkpoints;

/// <summary>Which tensor names a BLIP-2 folder uses where Hugging Face checkpoints have differed.</summary>
public sealed record Blip2HubNaming
{
    /// <summary>
    /// <c>self_attn.q_bias</c> + <c>self_attn.v_bias</c> (LAVIS's names, and what <see cref="HfCheckpoint"/> also
    /// accepts) instead of the one <c>self_attn.qkv.bias</c> [3·hidden] that transformers' Blip2Attention registers and
    /// the hub files hold.
    /// </summary>
    public bool SplitVisionQvBias { get; init; }

    /// <summary>
    /// Also write <c>language_model.{encoder,decoder}.embed_tokens.weight</c> (copies of <c>shared.weight</c>), as the
    /// pytorch_model.bin index of 2023 listed them; safetensors saved by transformers 4.x drop these tied aliases.
    /// </summary>
    public bool EmbedTokensAliases { get; init; }

    /// <summary>Q-Former text-branch <c>intermediate</c>/<c>output</c> tensors (<c>use_qformer_text_input: true</c>).</summary>
    public bool QFormerTextBranch { get; init; }

    /// <summary>The current <c>Salesforce/blip2-flan-t5-xl</c> files: qkv.bias, no aliases, no text branch.</summary>
    public static Blip2HubNaming Hub { get; } = new();
}

// The BLIP-2 FlanT5-XL hub repository: its config.json and its tensor names and shapes in state_dict order.
public static partial class HubLayoutFolder
{
    /// <summary>
    /// <c>config.json</c> of <c>Salesforce/blip2-flan-t5-xl</c> as transformers 4.47 saved it (model_type blip-2,
    /// <c>image_token_index</c> 32100, untied google/flan-t5-xl text model), with the architecture keys of each
    /// sub-config written out rather than left to their defaults. Numbers keep Python's spelling (1.0, 1e-06).
    /// </summary>
    public static JsonObject Blip2FlanT5XlConfig() => JsonNode.Parse(Blip2FlanT5XlConfigJson)!.AsObject();

    private const string Blip2FlanT5XlConfigJson = """
        {
          "architectures": ["Blip2ForConditionalGeneration"],
          "image_text_hidden_size": 256,
          "image_token_index": 32100,
          "initializer_factor": 1.0,
          "initializer_range": 0.02,
          "model_type": "blip-2",
          "num_query_tokens": 32,
          "qformer_config": {
            "attention_probs_dropout_prob": 0.1,
            "classifier_dropout": null,
            "cross_attention_frequency": 2,
            "encoder_hidden_size": 1408,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "hidden_size": 768,
            "initializer_range": 0.02,
            "intermediate_size": 3072,
            "layer_norm_eps": 1e-12,
            "max_position_embeddings": 512,
            "model_type": "blip_2_qformer",
            "num_attention_heads": 12,
            "num_hidden_layers": 12,
            "pad_token_id": 0,
            "position_embedding_type": "absolute",
            "use_qformer_text_input": false,
            "vocab_size": 30522
          },
          "text_config": {
            "architectures": ["T5ForConditionalGeneration"],
            "bos_token_id": 1,
            "classifier_dropout": 0.0,
            "d_ff": 5120,
            "d_kv": 64,
            "d_model": 2048,
            "decoder_start_token_id": 0,
            "dense_act_fn": "gelu",
            "dropout_rate": 0.1,
            "eos_token_id": 1,
            "feed_forward_proj": "gated-gelu",
            "initializer_factor": 1.0,
            "is_encoder_decoder": true,
            "is_gated_act": true,
            "layer_norm_epsilon": 1e-06,
            "model_type": "t5",
            "num_decoder_layers": 24,
            "num_heads": 32,
            "num_layers": 24,
            "output_past": true,
            "pad_token_id": 0,
            "relative_attention_max_distance": 128,
            "relative_attention_num_buckets": 32,
            "tie_word_embeddings": false,
            "torch_dtype": "float32",
            "vocab_size": 32128
          },
          "torch_dtype": "float32",
          "transformers_version": "4.47.0.dev0",
          "use_decoder_only_language_model": false,
          "vision_config": {
            "attention_dropout": 0.0,
            "dropout": 0.0,
            "hidden_act": "gelu",
            "hidden_size": 1408,
            "image_size": 224,
            "initializer_factor": 1.0,
            "initializer_range": 1e-10,
            "intermediate_size": 6144,
            "layer_norm_eps": 1e-06,
            "model_type": "blip_2_vision_model",
            "num_attention_heads": 16,
            "num_channels": 3,
            "num_hidden_layers": 39,
            "patch_size": 14,
            "qkv_bias": true
          }
        }
        """;

    /// <summary>
    /// Writes (or finds, cached) a random-valued <c>Salesforce/blip2-flan-t5-xl</c> folder: 1,289 fp32 tensors,
    /// 3,942,446,592 parameters, <c>model-00001-of-00002.safetensors</c> (≈9.96 GB) and
    /// <c>model-00002-of-00002.safetensors</c> (≈5.81 GB). Returns <paramref name="dir"/>.
    /// </summary>
    public static string EnsureBlip2FlanT5Xl(string dir, int seed = 0, Action<string>? progress = null)
    {
        var config = Blip2FlanT5XlConfig();
        Ensure(dir, config, Blip2Tensors(Blip2Config.FromJson(config)), DefaultMaxShardBytes, seed, progress);
        return dir;
    }

    /// <summary>
    /// The tensors of a BLIP-2 + T5 hub checkpoint in transformers' <c>state_dict</c> order (the order
    /// <c>save_pretrained</c> fills shards in): the model's own <c>query_tokens</c>, then vision_model, qformer,
    /// language_projection and language_model. Shapes are PyTorch's (Linear weights [out, in]).
    /// </summary>
    public static IReadOnlyList<(string Name, long[] Shape)> Blip2Tensors(Blip2Config config, Blip2HubNaming? naming = null)
    {
        naming ??= Blip2HubNaming.Hub;
        var list = new List<(string, long[])>();
        void Add(string name, params long[] shape) => list.Add((name, shape));
        void Linear(string prefix, long outDim, long inDim, bool bias = true)
        {
            Add(prefix + ".weight", outDim, inDim);
            if (bias) Add(prefix + ".bias", outDim);
        }
        void Norm(string prefix, long dim, bool bias = true)
        {
            Add(prefix + ".weight", dim);
            if (bias) Add(prefix + ".bias", dim);
        }

        var v = config.Vision;
        long vh = v.HiddenSize;
        Add("query_tokens", 1, config.NumQueryTokens, config.QFormer.HiddenSize);
        Add("vision_model.embeddings.class_embedding", 1, 1, vh);
        Add("vision_model.embeddings.position_embedding", 1, v.NumPositions, vh);
        Add("vision_model.embeddings.patch_embedding.weight", vh, 3, v.PatchSize, v.PatchSize);
        Add("vision_model.embeddings.patch_embedding.bias", vh);
        for (var i = 0; i < v.NumHiddenLayers; i++)
        {
            var p = $"vision_model.encoder.layers.{i}.";
            if (naming.SplitVisionQvBias)
            {
                Add(p + "self_attn.q_bias", vh);
                Add(p + "self_attn.v_bias", vh);
                Add(p + "self_attn.qkv.weight", 3 * vh, vh);
            }
            else Linear(p + "self_attn.qkv", 3 * vh, vh);
            Linear(p + "self_attn.projection", vh, vh);
            Norm(p + "layer_norm1", vh);
            Linear(p + "mlp.fc1", v.IntermediateSize, vh);
            Linear(p + "mlp.fc2", vh, v.IntermediateSize);
            Norm(p + "layer_norm2", vh);
        }
        Norm("vision_model.post_layernorm", vh);

        var q = config.QFormer;
        long qh = q.HiddenSize;
        Norm("qformer.layernorm", qh);
        void Attention(string prefix, long kvIn)
        {
            Linear(prefix + ".attention.query", qh, qh);
            Linear(prefix + ".attention.key", qh, kvIn);
            Linear(prefix + ".attention.value", qh, kvIn);
            Linear(prefix + ".output.dense", qh, qh);
            Norm(prefix + ".output.LayerNorm", qh);
        }
        for (var i = 0; i < q.NumHiddenLayers; i++)
        {
            var p = $"qformer.encoder.layer.{i}.";
            Attention(p + "attention", qh);
            if (i % q.CrossAttentionFrequency == 0) Attention(p + "crossattention", q.EncoderHiddenSize);
            if (naming.QFormerTextBranch)
            {
                Linear(p + "intermediate.dense", q.IntermediateSize, qh);
                Linear(p + "output.dense", qh, q.IntermediateSize);
                Norm(p + "output.LayerNorm", qh);
            }
            Linear(p + "intermediate_query.dense", q.IntermediateSize, qh);
            Linear(p + "output_query.dense", qh, q.IntermediateSize);
            Norm(p + "output_query.LayerNorm", qh);
        }
        Linear("language_projection", config.Text.DModel, qh);

        var t = config.Text;
        long d = t.DModel, inner = t.InnerDim;
        Add("language_model.shared.weight", t.VocabSize, d);
        foreach (var (stack, layers, decoder) in new[] { ("encoder", t.NumLayers, false), ("decoder", t.NumDecoderLayers, true) })
        {
            if (naming.EmbedTokensAliases) Add($"language_model.{stack}.embed_tokens.weight", t.VocabSize, d);
            for (var b = 0; b < layers; b++)
            {
                var p = $"language_model.{stack}.block.{b}.layer.";
                foreach (var m in new[] { "q", "k", "v" }) Add($"{p}0.SelfAttention.{m}.weight", inner, d);
                Add($"{p}0.SelfAttention.o.weight", d, inner);
                if (b == 0) Add($"{p}0.SelfAttention.relative_attention_bias.weight", t.RelativeAttentionNumBuckets, t.NumHeads);
                Add($"{p}0.layer_norm.weight", d);
                var ff = 1;
                if (decoder)
                {
                    foreach (var m in new[] { "q", "k", "v" }) Add($"{p}1.EncDecAttention.{m}.weight", inner, d);
                    Add($"{p}1.EncDecAttention.o.weight", d, inner);
                    Add($"{p}1.layer_norm.weight", d);
                    ff = 2;
                }
                if (t.IsGatedAct)
                {
                    Add($"{p}{ff}.DenseReluDense.wi_0.weight", t.DFf, d);
                    Add($"{p}{ff}.DenseReluDense.wi_1.weight", t.DFf, d);
                }
                else Add($"{p}{ff}.DenseReluDense.wi.weight", t.DFf, d);
                Add($"{p}{ff}.DenseReluDense.wo.weight", d, t.DFf);
                Add($"{p}{ff}.layer_norm.weight", d);
            }
            Add($"language_model.{stack}.final_layer_norm.weight", d);
        }
        if (!t.TieWordEmbeddings) Add("language_model.lm_head.weight", t.VocabSize, d);
        return list;
    }
}
