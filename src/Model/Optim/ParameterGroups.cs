using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Scst.Model.Optim;

public static class ParameterGroups
{
    /// <summary>
    /// LAVIS's split (<c>RunnerBase.optimizer</c>): frozen parameters are left out; a parameter gets no weight decay
    /// when <c>p.ndim &lt; 2 or "bias" in n or "ln" in n or "bn" in n</c> — the same plain substring tests, so HF T5's
    /// <c>layer_norm.weight</c> (1-D) is exempt through ndim, as in Python.
    /// </summary>
    public static IReadOnlyList<ParameterGroup> Lavis(IEnumerable<(string Name, Parameter Parameter)> namedParameters, double weightDecay, double lrScale = 1.0)
    {
        var decay = new List<(string, Parameter)>();
        var noDecay = new List<(string, Parameter)>();
        foreach (var (n, p) in namedParameters)
        {
            if (!p.requires_grad) continue;
            if (IsNoDecay(n, p)) noDecay.Add((n, p));
            else decay.Add((n, p));
        }
        return [new ParameterGroup("decay", decay, weightDecay, lrScale), new ParameterGroup("no_decay", noDecay, 0.0, lrScale)];
    }

    public static bool IsNoDecay(string name, Tensor p) =>
        p.ndim < 2 || name.Contains("bias", StringComparison.Ordinal) || name.Contains("ln", StringComparison.Ordinal) || name.Contains("bn", StringComparison.Ordinal);

    /// <summary>LAVIS's AdamW: its parameter groups, betas (0.9, beta2), eps 1e-8.</summary>
    public static AdamW LavisAdamW(nn.Module module, double initLr, double weightDecay, double beta2 = 0.999) =>
        new(Lavis(module.named_parameters(), weightDecay), initLr, 0.9, beta2);
}
