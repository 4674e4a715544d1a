using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Scst.Model.Optim;

public static class Gradients
{
    /// <summary>The L2 norm over all gradients together (as <see cref="ClipGlobalNorm"/> measures it), without changing them.</summary>
    public static double GlobalNorm(IEnumerable<Parameter> parameters)
    {
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var grads = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        if (grads.Count == 0) return 0.0;
        return torch.stack(grads.Select(g => g.detach().to_type(ScalarType.Float32).norm()).ToArray()).norm().item<float>();
    }

    /// <summary>
    /// <c>torch.nn.utils.clip_grad_norm_</c>: scales all gradients by <c>min(1, max_norm / (‖g‖₂ + 1e-6))</c>, where
    /// ‖g‖₂ is the norm over all gradients together. Returns that total norm (before clipping).
    /// </summary>
    public static double ClipGlobalNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var grads = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        if (grads.Count == 0) return 0.0;
        var norms = torch.stack(grads.Select(g => g.detach().to_type(ScalarType.Float32).norm()).ToArray());
        var total = norms.norm();
        // Always multiply by the clamped coefficient, as PyTorch does, so no host read decides the branch.
        using Scalar epsilon = 1e-6, max = maxNorm, one = 1.0;
        var coef = total.add(epsilon, Scalars.One).reciprocal_().mul_(max).clamp_max(one);
        foreach (var g in grads) g.mul_(coef.to(g.dtype));
        return total.item<float>();
    }
}

/// <summary>
/// Gradient accumulation over <see cref="Steps"/> micro-batches: scale each micro-batch loss by
/// <see cref="LossScale"/> (so the summed gradient is the mean over the full batch) and step the optimizer only when
/// <see cref="MicroStep"/> says the window is complete.
/// </summary>
public sealed class GradientAccumulator(int steps)
{
    public int Steps { get; } = steps >= 1 ? steps : throw new ArgumentOutOfRangeException(nameof(steps), steps, "accumulation steps must be at least 1.");

    public double LossScale => 1.0 / Steps;

    /// <summary>Micro-batches seen in the current window.</summary>
    public int Pending { get; private set; }

    /// <summary>Counts one micro-batch; true when the optimizer should step (and zero gradients) now.</summary>
    public bool MicroStep()
    {
        Pending++;
        if (Pending < Steps) return false;
        Pending = 0;
        return true;
    }

    public void Reset() => Pending = 0;
}
