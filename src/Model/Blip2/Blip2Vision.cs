using Scst.Model.Precision;
using TorchSharp;
using TorchSharp.Modules;
using Scst.Model.T5;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Scst.Model.Blip2;

/// <summary>Patch embedding (conv, stride = patch) + CLS token + learned position embedding.</summary>
public sealed class Blip2VisionEmbeddings : nn.Module
{
    private readonly Parameter class_embedding, position_embedding;
    private readonly Conv2d patch_embedding;

    public Blip2VisionEmbeddings(Blip2VisionConfig c) : base(nameof(Blip2VisionEmbeddings))
    {
        class_embedding = nn.Parameter(randn(1, 1, c.HiddenSize, dtype: c.TorchDType));
        patch_embedding = nn.Conv2d(3, c.HiddenSize, c.PatchSize, stride: c.PatchSize, dtype: c.TorchDType);
        position_embedding = nn.Parameter(randn(1, c.NumPositions, c.HiddenSize, dtype: c.TorchDType));
        register_parameter("class_embedding", class_embedding);
        register_module("patch_embedding", patch_embedding);
        register_parameter("position_embedding", position_embedding);
    }

    public Tensor forward(Tensor pixelValues)
    {
        using var scope = NewDisposeScope();
        var b = pixelValues.shape[0];
        var patches = patch_embedding.forward(pixelValues.to(patch_embedding.weight!.dtype)).flatten(2).transpose(1, 2);
        var cls = class_embedding.expand(b, 1, -1).to(patches.dtype);
        var h = cat([cls, patches], 1);
        return h.add(position_embedding.narrow(1, 0, h.shape[1]).to(h.dtype), Scalars.One).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// ViT self-attention with one fused <c>qkv</c> projection and an output <c>projection</c>. As in EVA-CLIP (LAVIS) and
/// transformers 4.x, queries and values have biases (<c>q_bias</c>, <c>v_bias</c>) and keys none: a key bias adds the
/// same q·b to every score of a query, which softmax ignores, so it is not a parameter (3,942,391,680 for FlanT5-XL).
/// </summary>
public sealed class Blip2Attention : nn.Module
{
    private readonly Linear qkv, projection;
    private readonly Parameter q_bias, v_bias;
    private readonly int _heads, _headDim;
    private readonly double _dropout;

    public Blip2Attention(Blip2VisionConfig c) : base(nameof(Blip2Attention))
    {
        _heads = c.NumAttentionHeads; _headDim = c.HiddenSize / c.NumAttentionHeads; _dropout = c.AttentionDropout;
        qkv = nn.Linear(c.HiddenSize, 3 * c.HiddenSize, hasBias: false, dtype: c.TorchDType);
        q_bias = nn.Parameter(zeros(c.HiddenSize, dtype: c.TorchDType));
        v_bias = nn.Parameter(zeros(c.HiddenSize, dtype: c.TorchDType));
        projection = nn.Linear(c.HiddenSize, c.HiddenSize, dtype: c.TorchDType);
        register_module("qkv", qkv);
        register_parameter("q_bias", q_bias);
        register_parameter("v_bias", v_bias);
        register_module("projection", projection);
    }

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (b, l, d) = (x.shape[0], x.shape[1], x.shape[2]);
        var bias = cat([q_bias, zeros_like(q_bias), v_bias]);
        var parts = Autocast.Linear(qkv, x, bias).reshape(b, l, 3, _heads, _headDim).permute(2, 0, 3, 1, 4);
        var ctx = F.scaled_dot_product_attention(parts[0], parts[1], parts[2], p: CallMode.Training(training) ? _dropout : 0.0);
        return Autocast.Linear(projection, ctx.transpose(1, 2).reshape(b, l, d)).MoveToOuterDisposeScope();
    }
}

public sealed class Blip2Mlp : nn.Module
{
    private readonly Linear fc1, fc2;
    private readonly string _act;

    public Blip2Mlp(int hidden, int intermediate, string act, ScalarType dtype = ScalarType.Float32) : base(nameof(Blip2Mlp))
    {
        _act = act;
        fc1 = nn.Linear(hidden, intermediate, dtype: dtype); fc2 = nn.Linear(intermediate, hidden, dtype: dtype);
        register_module("fc1", fc1); register_module("fc2", fc2);
    }

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return Autocast.Linear(fc2, Activations.Apply(_act, Autocast.Linear(fc1, x))).MoveToOuterDisposeScope();
    }
}

/// <summary>Pre-norm ViT layer.</summary>
public sealed class Blip2EncoderLayer : nn.Module
{
    private readonly Blip2Attention self_attn;
    private readonly LayerNorm layer_norm1, layer_norm2;
    private readonly Blip2Mlp mlp;

    public Blip2EncoderLayer(Blip2VisionConfig c) : base(nameof(Blip2EncoderLayer))
    {
        self_attn = new Blip2Attention(c);
        layer_norm1 = nn.LayerNorm(c.HiddenSize, c.LayerNormEps, dtype: c.TorchDType);
        mlp = new Blip2Mlp(c.HiddenSize, c.IntermediateSize, c.HiddenAct, c.TorchDType);
        layer_norm2 = nn.LayerNorm(c.HiddenSize, c.LayerNormEps, dtype: c.TorchDType);
        register_module("self_attn", self_attn);
        register_module("layer_norm1", layer_norm1);
        register_module("mlp", mlp);
        register_module("layer_norm2", layer_norm2);
    }

    public Tensor forward(Tensor h)
    {
        using var scope = NewDisposeScope();
        h = h.add(self_attn.forward(Autocast.LayerNorm(layer_norm1, h)), Scalars.One);
        h = h.add(mlp.forward(Autocast.LayerNorm(layer_norm2, h)), Scalars.One);
        return h.MoveToOuterDisposeScope();
    }
}

public sealed class Blip2Encoder : nn.Module
{
    private readonly ModuleList<Blip2EncoderLayer> layers;

    public Blip2Encoder(Blip2VisionConfig c) : base(nameof(Blip2Encoder))
    {
        layers = new ModuleList<Blip2EncoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new Blip2EncoderLayer(c)).ToArray());
        register_module("layers", layers);
    }

    /// <summary>Checkpoint each layer's activations while training (<see cref="ActivationCheckpoint"/>; LAVIS's EVA ViT <c>use_checkpoint</c>).</summary>
    public bool GradientCheckpointing { get; set; }

    public Tensor forward(Tensor h)
    {
        using var scope = NewDisposeScope();
        foreach (var l in layers)
            h = ActivationCheckpoint.Call(GradientCheckpointing, CallMode.Training(l.training), l, x => l.forward(x[0]), h);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// BLIP-2's ViT (EVA-CLIP in the real models): last hidden state after <c>post_layernorm</c>, [B, 1 + patches, D].
/// The trunk (<c>embeddings</c>, <c>encoder</c>) may be another model's, shared while frozen; <c>post_layernorm</c>
/// (LAVIS's <c>ln_vision</c>, which trains) is always this model's own.
/// </summary>
public sealed class Blip2VisionModel : nn.Module
{
    private readonly Blip2VisionEmbeddings embeddings;
    private readonly Blip2Encoder encoder;
    private readonly LayerNorm post_layernorm;

    public Blip2VisionModel(Blip2VisionConfig c, (Blip2VisionEmbeddings Embeddings, Blip2Encoder Encoder)? trunk = null) : base(nameof(Blip2VisionModel))
    {
        embeddings = trunk?.Embeddings ?? new Blip2VisionEmbeddings(c);
        encoder = trunk?.Encoder ?? new Blip2Encoder(c);
        post_layernorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        register_module("embeddings", embeddings);
        register_module("encoder", encoder);
        register_module("post_layernorm", post_layernorm);
    }

    public (Blip2VisionEmbeddings Embeddings, Blip2Encoder Encoder) Trunk => (embeddings, encoder);
    public LayerNorm PostLayerNorm => post_layernorm;

    public Tensor forward(Tensor pixelValues)
    {
        using var scope = NewDisposeScope();
        return Autocast.LayerNorm(post_layernorm, encoder.forward(embeddings.forward(pixelValues))).MoveToOuterDisposeScope();
    }
}
