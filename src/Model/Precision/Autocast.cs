using TorchSharp;
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
    private static readonly ThreadScoped<ScalarType> Scoped = new();

    /// <summary>The matmul dtype of the current thread's scope, or null outside one.</summary>
    public static ScalarType? DType => Scoped.Value;

    /// <summary>Enters a scope (null: none) for this thread until the returned handle is disposed.</summary>
    public static ThreadScoped<ScalarType>.Scope Enter(ScalarType? dtype) => Scoped.Enter(dtype);

    /// <summary>
    /// The matmul dtype <c>run.amp_dtype</c> asks for: bf16 or fp32 as named; <c>auto</c> is bf16 where the hardware
    /// has bf16 units (CUDA; CPUs with AVX512-BF16 or AMX) and fp32 elsewhere, where libtorch emulates bf16 matmuls
    /// (measured 8× slower than fp32 on an AVX2 CPU) — the weights stay held in their dtype either way.
    /// </summary>
    public static (ScalarType DType, string Why) Resolve(string setting, Device device) => setting switch
    {
        "bf16" => (ScalarType.BFloat16, "run.amp_dtype: bf16"),
        "fp32" => (ScalarType.Float32, "run.amp_dtype: fp32"),
        _ when device.type == TorchSharp.DeviceType.CUDA => (ScalarType.BFloat16, "CUDA"),
        _ when CpuHasBf16() => (ScalarType.BFloat16, "the CPU has native bf16 matmuls"),
        _ => (ScalarType.Float32, "this CPU has no bf16 matmul units (no avx512_bf16 / amx_bf16): matmuls of bf16-held weights run in fp32"),
    };

    private static bool CpuHasBf16()
    {
        const string info = "/proc/cpuinfo";
        if (!File.Exists(info)) return false;
        var flags = File.ReadLines(info).FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
        return flags.Split(' ').Any(f => f is "avx512_bf16" or "amx_bf16");
    }

    public static Tensor Linear(Linear layer, Tensor x) => Linear(layer, x, layer.bias);

    /// <summary>A linear layer with a bias given by the caller (e.g. one assembled from separate parameters).</summary>
    public static Tensor Linear(Linear layer, Tensor x, Tensor? bias)
    {
        var w = layer.weight!;
        var d = Scoped.Value is ScalarType low && w.dtype != low ? low : w.dtype;
        if (d == w.dtype && x.dtype == d && (bias is null || bias.dtype == d)) return F.linear(x, w, bias);
        // Gradients flow through a frozen low-precision layer computed wider: keep only its stored weight for backward,
        // not the widened copy autograd would save (an fp32 copy of a frozen bf16 T5 is 11 GB).
        if (x.requires_grad && !w.requires_grad && bias is not { requires_grad: true } && is_grad_enabled())
            return WidenedFrozenLinear.apply(x, w, bias, d);
        using var wd = w.to(d);
        using var bd = bias?.to(d);
        using var xd = x.to(d);
        return F.linear(xd, wd, bd);
    }

    /// <summary>y = x·Wᵀ + b in a wider dtype than W is held in, for a frozen W: backward re-widens W instead of keeping a copy.</summary>
    private sealed class WidenedFrozenLinear : autograd.SingleTensorFunction<WidenedFrozenLinear>
    {
        public override string Name => nameof(WidenedFrozenLinear);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, w, b, d) = ((Tensor)vars[0], (Tensor)vars[1], vars[2] as Tensor, (ScalarType)vars[3]);
            ctx.save_for_backward([w]);
            ctx.save_data("x_dtype", x.dtype);
            using var wd = w.to(d);
            using var bd = b?.to(d);
            using var xd = x.to(d);
            return F.linear(xd, wd, bd);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var w = ctx.get_saved_variables()[0];
            using var wd = w.to(gradOutput.dtype);
            using var gx = gradOutput.matmul(wd);
            return [gx.to((ScalarType)ctx.get_data("x_dtype")), null!, null!, null!];
        }
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
