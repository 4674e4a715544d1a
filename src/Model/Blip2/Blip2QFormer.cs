using Scst.Model.Precision;
using TorchSharp;
using TorchSharp.Modules;
using Scst.Model.T5;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Scst.Model.Blip2;

/// <summary>BERT-style attention (<c>query</c>/<c>key</c>/<c>value</c> with biases, scaled by 1/√d); keys from the image for cross-attention.</summary>
public sealed class Blip2QFormerMultiHeadAttention : nn.Module
{
    private readonly Linear query, key, value;
    private readonly int _heads, _headDim;
    private readonly double _dropout;

    public Blip2QFormerMultiHeadAttention(Blip2QFormerConfig c, bool isCrossAttention) : base(nameof(Blip2QFormerMultiHeadAttention))
    {
        _heads = c.NumAttentionHeads; _headDim = c.HiddenSize / c.NumAttentionHeads; _dropout = c.AttentionProbsDropoutProb;
        var kvIn = isCrossAttention ? c.EncoderHiddenSize : c.HiddenSize;
        query = nn.Linear(c.HiddenSize, c.HiddenSize);
        key = nn.Linear(kvIn, c.HiddenSize);
        value = nn.Linear(kvIn, c.HiddenSize);
        register_module("query", query); register_module("key", key); register_module("value", value);
    }

    /// <summary>Keys from <paramref name="kvSource"/>, values from <paramref name="valueSource"/> when given (the same tensor held as a second input: see <see cref="Blip2QFormerEncoder.forward"/>).</summary>
    public Tensor forward(Tensor x, Tensor kvSource, Tensor? valueSource = null)
    {
        using var scope = NewDisposeScope();
        var (b, l) = (x.shape[0], x.shape[1]);
        var s = kvSource.shape[1];
        var q = Autocast.Linear(query, x).view(b, l, _heads, _headDim).transpose(1, 2);
        var k = Autocast.Linear(key, kvSource).view(b, s, _heads, _headDim).transpose(1, 2);
        var v = Autocast.Linear(value, valueSource ?? kvSource).view(b, s, _heads, _headDim).transpose(1, 2);
        var ctx = F.scaled_dot_product_attention(q, k, v, p: training ? _dropout : 0.0);
        return ctx.transpose(1, 2).reshape(b, l, _heads * _headDim).MoveToOuterDisposeScope();
    }
}

/// <summary><c>dense</c> → dropout → <c>LayerNorm</c>(· + residual): BERT's post-norm output block.</summary>
public sealed class Blip2QFormerOutput : nn.Module
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;
    private readonly Dropout dropout;

    public Blip2QFormerOutput(int inDim, int hidden, double eps, double dropoutP) : base(nameof(Blip2QFormerOutput))
    {
        dense = nn.Linear(inDim, hidden);
        LayerNorm = nn.LayerNorm(hidden, eps);
        dropout = nn.Dropout(dropoutP);
        register_module("dense", dense); register_module("LayerNorm", LayerNorm); register_module("dropout", dropout);
    }

    public Tensor forward(Tensor h, Tensor residual)
    {
        using var scope = NewDisposeScope();
        return LayerNorm.forward(dropout.forward(Autocast.Linear(dense, h)).add(residual, Scalars.One)).MoveToOuterDisposeScope();
    }
}

public sealed class Blip2QFormerAttention : nn.Module
{
    private readonly Blip2QFormerMultiHeadAttention attention;
    private readonly Blip2QFormerOutput output;

    public Blip2QFormerAttention(Blip2QFormerConfig c, bool isCrossAttention) : base(nameof(Blip2QFormerAttention))
    {
        attention = new Blip2QFormerMultiHeadAttention(c, isCrossAttention);
        output = new Blip2QFormerOutput(c.HiddenSize, c.HiddenSize, c.LayerNormEps, c.HiddenDropoutProb);
        register_module("attention", attention); register_module("output", output);
    }

    public Tensor forward(Tensor h, Tensor kvSource, Tensor? valueSource = null)
    {
        using var scope = NewDisposeScope();
        return output.forward(attention.forward(h, kvSource, valueSource), h).MoveToOuterDisposeScope();
    }
}

public sealed class Blip2QFormerIntermediate : nn.Module
{
    private readonly Linear dense;
    private readonly string _act;

    public Blip2QFormerIntermediate(Blip2QFormerConfig c) : base(nameof(Blip2QFormerIntermediate))
    {
        _act = c.HiddenAct;
        dense = nn.Linear(c.HiddenSize, c.IntermediateSize);
        register_module("dense", dense);
    }

    public Tensor forward(Tensor x) => Activations.Apply(_act, Autocast.Linear(dense, x));
}

/// <summary>
/// A Q-Former layer for query tokens only (captioning feeds no text to the Q-Former): self-attention,
/// cross-attention to the image every <c>cross_attention_frequency</c> layers, then the query feed-forward.
/// </summary>
public sealed class Blip2QFormerLayer : nn.Module
{
    private readonly Blip2QFormerAttention attention;
    private readonly Blip2QFormerAttention? crossattention;
    private readonly Blip2QFormerIntermediate intermediate_query;
    private readonly Blip2QFormerOutput output_query;

    public Blip2QFormerLayer(Blip2QFormerConfig c, int layerIdx) : base(nameof(Blip2QFormerLayer))
    {
        attention = new Blip2QFormerAttention(c, isCrossAttention: false);
        register_module("attention", attention);
        if (layerIdx % c.CrossAttentionFrequency == 0)
        {
            crossattention = new Blip2QFormerAttention(c, isCrossAttention: true);
            register_module("crossattention", crossattention);
        }
        intermediate_query = new Blip2QFormerIntermediate(c);
        output_query = new Blip2QFormerOutput(c.IntermediateSize, c.HiddenSize, c.LayerNormEps, c.HiddenDropoutProb);
        register_module("intermediate_query", intermediate_query);
        register_module("output_query", output_query);
    }

    /// <summary>Cross-attention keys from <paramref name="imageEmbeds"/>, values from <paramref name="imageValues"/> (default: the same).</summary>
    public Tensor forward(Tensor h, Tensor imageEmbeds, Tensor? imageValues = null)
    {
        using var scope = NewDisposeScope();
        h = attention.forward(h, h);
        if (crossattention is not null) h = crossattention.forward(h, imageEmbeds, imageValues);
        return output_query.forward(intermediate_query.forward(h), h).MoveToOuterDisposeScope();
    }
}

public sealed class Blip2QFormerEncoder : nn.Module
{
    private readonly ModuleList<Blip2QFormerLayer> layer;

    public Blip2QFormerEncoder(Blip2QFormerConfig c) : base(nameof(Blip2QFormerEncoder))
    {
        layer = new ModuleList<Blip2QFormerLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new Blip2QFormerLayer(c, i)).ToArray());
        register_module("layer", layer);
    }

    /// <summary>Checkpoint each layer's activations while training (<see cref="ActivationCheckpoint"/>; BERT's <c>gradient_checkpointing</c> in LAVIS's Q-Former).</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>
    /// The layers over the queries. A checkpointed layer takes the image embeddings twice, values' first, so it returns
    /// the gradients of its value and key projections separately and the engine sums them into the image embeddings'
    /// gradient in the order an unchecked run does (one summed gradient per layer would associate differently).
    /// </summary>
    public Tensor forward(Tensor h, Tensor imageEmbeds)
    {
        using var scope = NewDisposeScope();
        foreach (var l in layer)
            h = ActivationCheckpoint.Call(GradientCheckpointing, l.training, l, x => l.forward(x[0], x[2], x[1]), h, imageEmbeds, imageEmbeds);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>The Q-Former: LayerNorm of the learned queries, then the layers. Output [B, num_query_tokens, hidden].</summary>
public sealed class Blip2QFormerModel : nn.Module
{
    private readonly LayerNorm layernorm;
    private readonly Dropout dropout;
    private readonly Blip2QFormerEncoder encoder;

    public Blip2QFormerModel(Blip2QFormerConfig c) : base(nameof(Blip2QFormerModel))
    {
        layernorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        dropout = nn.Dropout(c.HiddenDropoutProb);
        encoder = new Blip2QFormerEncoder(c);
        register_module("layernorm", layernorm);
        register_module("dropout", dropout);
        register_module("encoder", encoder);
    }

    public Blip2QFormerEncoder Encoder => encoder;

    public Tensor forward(Tensor queryEmbeds, Tensor imageEmbeds)
    {
        using var scope = NewDisposeScope();
        var h = dropout.forward(layernorm.forward(queryEmbeds));
        return encoder.forward(h, imageEmbeds).MoveToOuterDisposeScope();
    }
}
