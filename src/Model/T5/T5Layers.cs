using Scst.Model.Precision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Scst.Model.T5;

/// <summary>T5's RMS norm: no mean subtraction, no bias, variance in fp32.</summary>
public sealed class T5LayerNorm : nn.Module
{
    private readonly Parameter weight;
    private readonly Scalar _eps;

    public T5LayerNorm(long dim, double eps, ScalarType dtype = ScalarType.Float32) : base(nameof(T5LayerNorm))
    {
        weight = nn.Parameter(ones(dim, dtype: dtype));
        register_parameter("weight", weight);
        _eps = Scalars.Of(eps);
    }

    public Tensor Weight => weight;

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var variance = x.to(ScalarType.Float32).pow(Scalars.Of(2L)).mean([-1L], keepdim: true);
        var h = x * rsqrt(variance.add(_eps, Scalars.One));
        if (weight.dtype is ScalarType.BFloat16 or ScalarType.Float16) h = h.to(weight.dtype);
        return (weight * h).MoveToOuterDisposeScope();
    }
}

/// <summary>Activations by HF name.</summary>
public static class Activations
{
    public static Tensor Apply(string name, Tensor x) => name switch
    {
        "relu" => F.relu(x),
        // HF NewGELUActivation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
        "gelu_new" or "gelu_pytorch_tanh" => F.gelu(x, GELU.Approximate.tanh),
        "gelu" => F.gelu(x),
        "silu" or "swish" => F.silu(x),
        _ => throw new NotSupportedException($"activation '{name}' is not supported (relu, gelu_new, gelu, silu are)."),
    };
}

/// <summary>The feed-forward: <c>wi</c> (ReLU etc.) or gated <c>wi_0</c>·<c>wi_1</c>, then <c>wo</c>.</summary>
public sealed class T5DenseActDense : nn.Module
{
    private readonly Linear? wi, wi_0, wi_1;
    private readonly Linear wo;
    private readonly CallerDropout dropout;
    private readonly string _act;

    public T5DenseActDense(T5Config c) : base(nameof(T5DenseActDense))
    {
        _act = c.DenseActFn;
        if (c.IsGatedAct)
        {
            wi_0 = nn.Linear(c.DModel, c.DFf, hasBias: false, dtype: c.TorchDType);
            wi_1 = nn.Linear(c.DModel, c.DFf, hasBias: false, dtype: c.TorchDType);
            register_module("wi_0", wi_0); register_module("wi_1", wi_1);
        }
        else
        {
            wi = nn.Linear(c.DModel, c.DFf, hasBias: false, dtype: c.TorchDType);
            register_module("wi", wi);
        }
        wo = nn.Linear(c.DFf, c.DModel, hasBias: false, dtype: c.TorchDType);
        dropout = new CallerDropout(c.DropoutRate);
        register_module("wo", wo);
        register_module("dropout", dropout);
    }

    public IEnumerable<Linear> InputProjections => new[] { wi, wi_0, wi_1 }.OfType<Linear>();
    public Linear Wo => wo;

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = wi is not null
            ? Activations.Apply(_act, Autocast.Linear(wi, x))
            : Activations.Apply(_act, Autocast.Linear(wi_0!, x)) * Autocast.Linear(wi_1!, x);
        h = dropout.forward(h);
        if (h.dtype != wo.weight!.dtype) h = h.to(wo.weight.dtype);
        return Autocast.Linear(wo, h).MoveToOuterDisposeScope();
    }
}

/// <summary>The last layer of a block: pre-norm feed-forward with a residual.</summary>
public sealed class T5LayerFF : nn.Module
{
    private readonly T5DenseActDense DenseReluDense;
    private readonly T5LayerNorm layer_norm;
    private readonly CallerDropout dropout;

    public T5LayerFF(T5Config c) : base(nameof(T5LayerFF))
    {
        DenseReluDense = new T5DenseActDense(c);
        layer_norm = new T5LayerNorm(c.DModel, c.LayerNormEpsilon, c.TorchDType);
        dropout = new CallerDropout(c.DropoutRate);
        register_module("DenseReluDense", DenseReluDense);
        register_module("layer_norm", layer_norm);
        register_module("dropout", dropout);
    }

    public T5DenseActDense Dense => DenseReluDense;

    public Tensor forward(Tensor h)
    {
        using var scope = NewDisposeScope();
        return h.add(dropout.forward(DenseReluDense.forward(layer_norm.forward(h))), Scalars.One).MoveToOuterDisposeScope();
    }
}

/// <summary>One block: <c>layer.0</c> self-attention, (decoder) <c>layer.1</c> cross-attention, then feed-forward.</summary>
public sealed class T5Block : nn.Module
{
    private readonly ModuleList<nn.Module> layer;
    public T5LayerSelfAttention SelfAttentionLayer { get; }
    public T5LayerCrossAttention? CrossAttentionLayer { get; }
    public T5LayerFF FeedForwardLayer { get; }

    public T5Block(T5Config c, bool isDecoder, bool hasRelativeAttentionBias) : base(nameof(T5Block))
    {
        SelfAttentionLayer = new T5LayerSelfAttention(c, hasRelativeAttentionBias, bidirectional: !isDecoder);
        FeedForwardLayer = new T5LayerFF(c);
        var layers = new List<nn.Module> { SelfAttentionLayer };
        if (isDecoder)
        {
            CrossAttentionLayer = new T5LayerCrossAttention(c);
            layers.Add(CrossAttentionLayer);
        }
        layers.Add(FeedForwardLayer);
        layer = new ModuleList<nn.Module>(layers.ToArray());
        register_module("layer", layer);
    }

    /// <summary>An encoder block over all positions.</summary>
    public Tensor ForwardEncoder(Tensor h, Tensor selfBias)
    {
        // Its own scope: a checkpointed forward must let go of the intermediate at once.
        using var scope = NewDisposeScope();
        return FeedForwardLayer.forward(SelfAttentionLayer.forward(h, selfBias)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A teacher-forced decoder block, projecting its cross-attention keys and values from the encoder output given twice:
    /// checkpointed, it returns the two projections' gradients apart (values first) and the engine sums them into the
    /// encoder output's gradient in an unchecked run's order, bitwise also in bf16 (one sum per block would not be).
    /// </summary>
    public Tensor ForwardDecoder(Tensor h, Tensor selfBias, Tensor keySource, Tensor valueSource, Tensor crossBias)
    {
        using var scope = NewDisposeScope();
        var (k, v) = CrossAttentionLayer!.Attention.ProjectKV(keySource, valueSource);
        h = CrossAttentionLayer.forward(SelfAttentionLayer.forward(h, selfBias), k, v, crossBias);
        return FeedForwardLayer.forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Encoder or decoder stack. The token embedding is the model's <c>shared</c> table, passed in, so it is not
/// registered here (HF's state dict has it once, as <c>shared.weight</c>).
/// </summary>
public sealed class T5Stack : nn.Module
{
    private readonly ModuleList<T5Block> block;
    private readonly T5LayerNorm final_layer_norm;
    private readonly CallerDropout dropout;
    public bool IsDecoder { get; }
    public int NumBlocks => block.Count;

    public T5Stack(T5Config c, bool isDecoder) : base(nameof(T5Stack))
    {
        IsDecoder = isDecoder;
        var n = isDecoder ? c.NumDecoderLayers : c.NumLayers;
        block = new ModuleList<T5Block>(Enumerable.Range(0, n).Select(i => new T5Block(c, isDecoder, i == 0)).ToArray());
        final_layer_norm = new T5LayerNorm(c.DModel, c.LayerNormEpsilon, c.TorchDType);
        dropout = new CallerDropout(c.DropoutRate);
        register_module("block", block);
        register_module("final_layer_norm", final_layer_norm);
        register_module("dropout", dropout);
    }

    public T5Block Block(int i) => block[i];

    /// <summary>Checkpoint each block in the training passes (<see cref="ActivationCheckpoint"/>; HF's <c>gradient_checkpointing</c>); never the KV-cache steps.</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>Position bias of block 0's self-attention, [1, H, q, k], for queries starting at <paramref name="offset"/>.</summary>
    public Tensor PositionBias(long qLen, long kLen, Device device, long offset = 0) =>
        block[0].SelfAttentionLayer.Attention.ComputeBias(qLen, kLen, device, offset);

    /// <summary>Encoder pass over embeddings [B, S, D] with an additive bias (position bias + key mask).</summary>
    public Tensor ForwardEncoder(Tensor embeds, Tensor selfBias)
    {
        using var scope = NewDisposeScope();
        var h = dropout.forward(embeds);
        var training = CallMode.Training(this.training);
        foreach (var b in block)
            h = ActivationCheckpoint.Call(GradientCheckpointing, training, b, x => b.ForwardEncoder(x[0], x[1]), h, selfBias);
        return dropout.forward(final_layer_norm.forward(h)).MoveToOuterDisposeScope();
    }

    /// <summary>Teacher-forced decoder pass over all positions, attending to <paramref name="encoderHidden"/>.</summary>
    public Tensor ForwardDecoder(Tensor embeds, Tensor selfBias, Tensor encoderHidden, Tensor crossBias)
    {
        using var scope = NewDisposeScope();
        var h = dropout.forward(embeds);
        var training = CallMode.Training(this.training);
        foreach (var b in block)
            h = ActivationCheckpoint.Call(GradientCheckpointing, training, b, x => b.ForwardDecoder(x[0], x[1], x[3], x[2], x[4]),
                h, selfBias, encoderHidden, encoderHidden, crossBias);
        return dropout.forward(final_layer_norm.forward(h)).MoveToOuterDisposeScope();
    }

    /// <summary>One decoding step at position <paramref name="t"/> for embeddings [N, 1, D], using and filling the KV cache.</summary>
    public Tensor StepDecoder(Tensor embeds, long t, Tensor selfBias, T5DecoderCache cache, Tensor crossBias)
    {
        using var scope = NewDisposeScope();
        var h = dropout.forward(embeds);
        for (var i = 0; i < block.Count; i++)
        {
            var b = block[i];
            h = b.SelfAttentionLayer.Step(h, cache.SelfK[i], cache.SelfV[i], t, selfBias);
            h = b.CrossAttentionLayer!.forward(h, cache.CrossK[i], cache.CrossV[i], crossBias);
            h = b.FeedForwardLayer.forward(h);
        }
        return dropout.forward(final_layer_norm.forward(h)).MoveToOuterDisposeScope();
    }

    public IEnumerable<T5Block> Blocks => block;
}
