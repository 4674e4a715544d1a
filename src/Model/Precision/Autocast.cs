using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Scst.Model.Precision;

/// <summary>
/// Mixed precision as <c>torch.autocast</c> does it for the ops that matter here: inside a scope, linear layers (the
/// matmuls) compute in the scope's low-precision dtype from their fp32 master weights; norms, softmax, losses and
/// log-probs keep fp32 because their callers cast to it. TorchSharp has no autocast, so the model's linear layers call
/// <see cref="Linear"/>. Outside a scope a layer computes in its own dtype, its input cast to it: a model whose parts
/// are held in different dtypes (frozen bf16 T5, fp32 Q-Former) runs every module in its stored dtype.
/// </summary>
public static class Autocast
{
    [ThreadStatic] private static ScalarType? _dtype;

    /// <summary>The matmul dtype of the current thread's scope, or null outside one.</summary>
    public static ScalarType? DType => _dtype;

    /// <summary>Enters a scope (null: none) for this thread until the returned handle is disposed.</summary>
    public static Scope Enter(ScalarType? dtype) => new(dtype);

    public readonly struct Scope : IDisposable
    {
        private readonly ScalarType? _previous;
        internal Scope(ScalarType? dtype) { _previous = _dtype; _dtype = dtype; }
        public void Dispose() => _dtype = _previous;
    }

    public static Tensor Linear(Linear layer, Tensor x) => Linear(layer, x, layer.bias);

    /// <summary>A linear layer with a bias given by the caller (e.g. one assembled from separate parameters).</summary>
    public static Tensor Linear(Linear layer, Tensor x, Tensor? bias)
    {
        var w = layer.weight!;
        var d = _dtype is ScalarType low && w.dtype != low ? low : w.dtype;
        if (d == w.dtype && x.dtype == d && (bias is null || bias.dtype == d)) return F.linear(x, w, bias);
        using var wd = w.to(d);
        using var bd = bias?.to(d);
        using var xd = x.to(d);
        return F.linear(xd, wd, bd);
    }

    /// <summary>A layer norm on its weight's dtype (fp32 for what trains), whatever dtype the input arrives in.</summary>
    public static Tensor LayerNorm(LayerNorm norm, Tensor x)
    {
        var dt = norm.weight!.dtype;
        if (x.dtype == dt) return norm.forward(x);
        using var xc = x.to(dt);
        return norm.forward(xc);
    }
}
