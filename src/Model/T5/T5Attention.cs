using Scst.Model.Precision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Scst.Model.T5;

/// <summary>
/// T5 multi-head attention: no 1/√d scaling, optional relative position bias (block 0 only; shared by the
/// other layers of the stack through the bias tensor passed in).
/// </summary>
public sealed class T5Attention : nn.Module
{
    private readonly Linear q, k, v, o;
    private readonly Embedding? relative_attention_bias;
    private readonly int _heads, _dkv, _buckets, _maxDistance;
    private readonly bool _bidirectional;
    private readonly double _dropout;
    // SDPA always scales by 1/√d_kv and TorchSharp's binding has no scale argument: scale q by √d_kv first.
    private readonly Scalar _sdpaCompensation;

    public T5Attention(T5Config c, bool hasRelativeAttentionBias, bool bidirectional) : base(nameof(T5Attention))
    {
        _heads = c.NumHeads; _dkv = c.DKv; _buckets = c.RelativeAttentionNumBuckets;
        _maxDistance = c.RelativeAttentionMaxDistance; _bidirectional = bidirectional; _dropout = c.DropoutRate;
        _sdpaCompensation = Scalars.Of(Math.Sqrt(c.DKv));
        q = nn.Linear(c.DModel, c.InnerDim, hasBias: false, dtype: c.TorchDType);
        k = nn.Linear(c.DModel, c.InnerDim, hasBias: false, dtype: c.TorchDType);
        v = nn.Linear(c.DModel, c.InnerDim, hasBias: false, dtype: c.TorchDType);
        o = nn.Linear(c.InnerDim, c.DModel, hasBias: false, dtype: c.TorchDType);
        register_module("q", q); register_module("k", k); register_module("v", v); register_module("o", o);
        if (hasRelativeAttentionBias)
        {
            relative_attention_bias = nn.Embedding(c.RelativeAttentionNumBuckets, c.NumHeads, dtype: c.TorchDType);
            register_module("relative_attention_bias", relative_attention_bias);
        }
    }

    public Linear Q => q; public Linear K => k; public Linear V => v; public Linear O => o;
    public Embedding? RelativeAttentionBias => relative_attention_bias;

    /// <summary>HF <c>_relative_position_bucket</c>: exact buckets for small distances, log-spaced up to max_distance.</summary>
    public static Tensor RelativePositionBucket(Tensor relativePosition, bool bidirectional, int numBuckets, int maxDistance)
    {
        using var scope = NewDisposeScope();
        var buckets = zeros_like(relativePosition);
        var rp = relativePosition;
        if (bidirectional)
        {
            numBuckets /= 2;
            buckets = buckets.add(rp.gt(Scalars.Of(0L)).to(ScalarType.Int64).mul(Scalars.Of((long)numBuckets)), Scalars.One);
            rp = rp.abs();
        }
        else
        {
            rp = -minimum(rp, zeros_like(rp));
        }
        var maxExact = numBuckets / 2;
        var isSmall = rp.lt(Scalars.Of((long)maxExact));
        var large = log(rp.to(ScalarType.Float32).div(Scalars.Of((long)maxExact))).div(Scalars.Of(Math.Log((double)maxDistance / maxExact)))
            .mul(Scalars.Of((long)(numBuckets - maxExact))).to(ScalarType.Int64).add(Scalars.Of((long)maxExact), Scalars.One);
        large = minimum(large, full_like(large, Scalars.Of((long)(numBuckets - 1))));
        return buckets.add(where(isSmall, rp, large), Scalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>Position bias [1, H, qLen, kLen] for query positions offset..offset+qLen-1.</summary>
    public Tensor ComputeBias(long qLen, long kLen, Device device, long offset = 0)
    {
        if (relative_attention_bias is null) throw new InvalidOperationException("this attention layer has no relative_attention_bias");
        using var scope = NewDisposeScope();
        var ctx = arange(Scalars.Of(offset), Scalars.Of(offset + qLen), Scalars.One, dtype: ScalarType.Int64, device: device).unsqueeze(1);
        var mem = arange(Scalars.Of(0L), Scalars.Of(kLen), Scalars.One, dtype: ScalarType.Int64, device: device).unsqueeze(0);
        var buckets = RelativePositionBucket(mem.sub(ctx), _bidirectional, _buckets, _maxDistance);
        var values = relative_attention_bias.forward(buckets); // [q, k, H]
        return values.permute(2, 0, 1).unsqueeze(0).MoveToOuterDisposeScope();
    }

    /// <summary>Projects keys and values: [B, H, L, d_kv] each.</summary>
    public (Tensor K, Tensor V) ProjectKV(Tensor source) => ProjectKV(source, source);

    /// <summary>Keys from <paramref name="keySource"/>, values from <paramref name="valueSource"/> (the same tensor, held as two inputs: see <see cref="T5Block.ForwardDecoder"/>).</summary>
    public (Tensor K, Tensor V) ProjectKV(Tensor keySource, Tensor valueSource)
    {
        var (b, l) = (keySource.shape[0], keySource.shape[1]);
        var key = Autocast.Linear(k, keySource).view(b, l, _heads, _dkv).transpose(1, 2);
        var value = Autocast.Linear(v, valueSource).view(b, l, _heads, _dkv).transpose(1, 2);
        return (key, value);
    }

    /// <summary>Attention of <paramref name="x"/> over given keys/values with an additive bias (position bias + mask).</summary>
    public Tensor Attend(Tensor x, Tensor key, Tensor value, Tensor bias)
    {
        using var scope = NewDisposeScope();
        var (b, l) = (x.shape[0], x.shape[1]);
        var query = Autocast.Linear(q, x).view(b, l, _heads, _dkv).transpose(1, 2);
        var attnBias = bias.dtype == query.dtype ? bias : bias.to(query.dtype);
        // A cache held in the model's dtype meets queries computed in another (autocast): attention runs in the queries'.
        if (key.dtype != query.dtype) (key, value) = (key.to(query.dtype), value.to(query.dtype));
        var ctx = F.scaled_dot_product_attention(query.mul(_sdpaCompensation), key, value, attnBias,
            p: CallMode.Training(training) ? _dropout : 0.0);
        var y = Autocast.Linear(o, ctx.transpose(1, 2).reshape(b, l, _heads * _dkv));
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary><c>layer.0</c> of a block: pre-norm self-attention with a residual.</summary>
public sealed class T5LayerSelfAttention : nn.Module
{
    private readonly T5Attention SelfAttention;
    private readonly T5LayerNorm layer_norm;
    private readonly CallerDropout dropout;

    public T5LayerSelfAttention(T5Config c, bool hasRelativeAttentionBias, bool bidirectional) : base(nameof(T5LayerSelfAttention))
    {
        SelfAttention = new T5Attention(c, hasRelativeAttentionBias, bidirectional);
        layer_norm = new T5LayerNorm(c.DModel, c.LayerNormEpsilon, c.TorchDType);
        dropout = new CallerDropout(c.DropoutRate);
        register_module("SelfAttention", SelfAttention);
        register_module("layer_norm", layer_norm);
        register_module("dropout", dropout);
    }

    public T5Attention Attention => SelfAttention;

    public Tensor forward(Tensor h, Tensor bias)
    {
        using var scope = NewDisposeScope();
        var n = layer_norm.forward(h);
        var (key, value) = SelfAttention.ProjectKV(n);
        return h.add(dropout.forward(SelfAttention.Attend(n, key, value, bias)), Scalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>One decoding step: writes this step's K/V into the preallocated cache at <paramref name="t"/>.</summary>
    public Tensor Step(Tensor h, Tensor cacheK, Tensor cacheV, long t, Tensor bias)
    {
        using var scope = NewDisposeScope();
        var n = layer_norm.forward(h);
        var (key, value) = SelfAttention.ProjectKV(n);
        cacheK.narrow(2, t, 1).copy_(key);
        cacheV.narrow(2, t, 1).copy_(value);
        var y = SelfAttention.Attend(n, cacheK.narrow(2, 0, t + 1), cacheV.narrow(2, 0, t + 1), bias);
        return h.add(dropout.forward(y), Scalars.One).MoveToOuterDisposeScope();
    }

    public Tensor Norm(Tensor h) => layer_norm.forward(h);
}

/// <summary><c>layer.1</c> of a decoder block: cross-attention to the encoder output.</summary>
public sealed class T5LayerCrossAttention : nn.Module
{
    private readonly T5Attention EncDecAttention;
    private readonly T5LayerNorm layer_norm;
    private readonly CallerDropout dropout;

    public T5LayerCrossAttention(T5Config c) : base(nameof(T5LayerCrossAttention))
    {
        EncDecAttention = new T5Attention(c, hasRelativeAttentionBias: false, bidirectional: true);
        layer_norm = new T5LayerNorm(c.DModel, c.LayerNormEpsilon, c.TorchDType);
        dropout = new CallerDropout(c.DropoutRate);
        register_module("EncDecAttention", EncDecAttention);
        register_module("layer_norm", layer_norm);
        register_module("dropout", dropout);
    }

    public T5Attention Attention => EncDecAttention;

    public Tensor forward(Tensor h, Tensor encK, Tensor encV, Tensor encoderBias)
    {
        using var scope = NewDisposeScope();
        var y = EncDecAttention.Attend(layer_norm.forward(h), encK, encV, encoderBias);
        return h.add(dropout.forward(y), Scalars.One).MoveToOuterDisposeScope();
    }
}
