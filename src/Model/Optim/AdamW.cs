using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Scst.Model.Optim;

/// <summary>A named set of parameters sharing a weight decay (and a multiplier on the scheduled learning rate).</summary>
public sealed record ParameterGroup(string Name, IReadOnlyList<(string Name, Parameter Parameter)> Parameters, double WeightDecay, double LrScale = 1.0);

/// <summary>
/// AdamW (Loshchilov &amp; Hutter), the same update as <c>torch.optim.AdamW</c> (amsgrad off, single-tensor path):
/// decoupled decay <c>p ← p·(1 − lr·wd)</c>, then <c>m ← β1·m + (1−β1)·g</c>, <c>v ← β2·v + (1−β2)·g²</c>,
/// <c>p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε)</c>. Written out rather than wrapping TorchSharp's optimizer so
/// that its state (exp_avg, exp_avg_sq, step per parameter) is plain named tensors that checkpoint to safetensors.
/// </summary>
public sealed class AdamW
{
    private sealed class Slot(string name, Parameter parameter, ParameterGroup group)
    {
        public string Name { get; } = name;
        public Parameter Parameter { get; } = parameter;
        public ParameterGroup Group { get; } = group;
        public Tensor? ExpAvg;
        public Tensor? ExpAvgSq;
        public long Step;
    }

    private readonly List<Slot> _slots = [];

    public AdamW(IEnumerable<ParameterGroup> groups, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        Groups = groups.ToList();
        LearningRate = lr;
        (Beta1, Beta2, Eps) = (beta1, beta2, eps);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var g in Groups)
            foreach (var (name, p) in g.Parameters)
            {
                if (!seen.Add(name)) throw new ArgumentException($"parameter '{name}' appears in more than one group (or twice).");
                _slots.Add(new Slot(name, p, g));
            }
    }

    public IReadOnlyList<ParameterGroup> Groups { get; }

    /// <summary>The base learning rate; a scheduler sets it, each group uses it times its <see cref="ParameterGroup.LrScale"/>.</summary>
    public double LearningRate { get; set; }

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }

    public IEnumerable<Parameter> Parameters => _slots.Select(s => s.Parameter);

    /// <summary>Applies one update to every parameter that has a gradient (others keep their state, as in PyTorch).</summary>
    public void Step()
    {
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        foreach (var s in _slots)
        {
            var grad = s.Parameter.grad;
            if (grad is null) continue;
            if (s.ExpAvg is null)
            {
                s.ExpAvg = torch.zeros_like(s.Parameter).DetachFromDisposeScope();
                s.ExpAvgSq = torch.zeros_like(s.Parameter).DetachFromDisposeScope();
            }
            s.Step++;
            var lr = LearningRate * s.Group.LrScale;
            var p = s.Parameter;
            // Every Scalar is held in a local for the native call: TorchSharp does not keep an implicit conversion's
            // temporary alive, and a finalised one crashes natively (rarely; seen as "toFloat ... Scalar.h").
            var biasCorrection1 = 1 - Math.Pow(Beta1, s.Step);
            var biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(Beta2, s.Step));
            using Scalar decay = 1 - lr * s.Group.WeightDecay, beta2 = Beta2, oneMinusBeta2 = 1 - Beta2,
                bc2 = biasCorrection2Sqrt, eps = Eps, step = -lr / biasCorrection1;
            if (s.Group.WeightDecay != 0) p.mul_(decay);
            s.ExpAvg.lerp_(grad, 1 - Beta1); // TorchSharp's lerp_(Tensor, Scalar) throws; this overload takes the double
            s.ExpAvgSq!.mul_(beta2).addcmul_(grad, grad, oneMinusBeta2);
            var denom = s.ExpAvgSq.sqrt().div_(bc2).add_(eps, Scalars.One);
            p.addcdiv_(s.ExpAvg, denom, step);
        }
    }

    public void ZeroGrad()
    {
        foreach (var s in _slots)
            s.Parameter.grad?.zero_();
    }

    /// <summary>
    /// The optimizer's state as named tensors (<c>{param}.exp_avg</c>, <c>{param}.exp_avg_sq</c>; copies, on the CPU)
    /// and JSON-ready scalars (hyper-parameters, groups, per-parameter step counts). With <paramref name="copy"/> false
    /// the tensors are the live moments (CPU views of them), for a writer that finishes before the next step: no second
    /// copy of the optimizer state (twice the trainable weights) is made.
    /// </summary>
    public OptimizerCheckpoint StateDict(bool copy = true)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var steps = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var s in _slots)
        {
            if (s.ExpAvg is null) continue;
            tensors[$"{s.Name}.exp_avg"] = copy ? s.ExpAvg.detach().cpu().clone() : s.ExpAvg.detach().cpu();
            tensors[$"{s.Name}.exp_avg_sq"] = copy ? s.ExpAvgSq!.detach().cpu().clone() : s.ExpAvgSq!.detach().cpu();
            steps[s.Name] = s.Step;
        }
        var groups = Groups.Select(g => new OptimizerGroupState(g.Name, g.WeightDecay, g.LrScale, g.Parameters.Select(p => p.Name).ToList())).ToList();
        return new OptimizerCheckpoint(tensors, new OptimizerScalars("adamw", LearningRate, Beta1, Beta2, Eps, groups, steps));
    }

    /// <summary>
    /// Restores a state written by <see cref="StateDict"/>. The parameter names and groups must match this
    /// optimizer's; any difference is an error that names the parameter, because silently resuming with
    /// missing moments changes the run.
    /// </summary>
    public void LoadStateDict(OptimizerCheckpoint state)
    {
        var sc = state.Scalars;
        if (sc.Type != "adamw") throw new InvalidDataException($"optimizer state is of type '{sc.Type}', expected 'adamw'.");
        var mine = Groups.Select(g => (g.Name, Params: string.Join(",", g.Parameters.Select(p => p.Name)))).ToList();
        var theirs = sc.Groups.Select(g => (g.Name, Params: string.Join(",", g.Parameters))).ToList();
        if (!mine.SequenceEqual(theirs))
            throw new InvalidDataException(
                $"optimizer state has groups [{string.Join("; ", sc.Groups.Select(g => $"{g.Name}: {g.Parameters.Count} params"))}] " +
                $"but this optimizer has [{string.Join("; ", Groups.Select(g => $"{g.Name}: {g.Parameters.Count} params"))}] (or the parameter names differ).");
        foreach (var name in sc.Steps.Keys)
            if (_slots.All(s => s.Name != name)) throw new InvalidDataException($"optimizer state has a step count for unknown parameter '{name}'.");
        using var _ = torch.no_grad();
        foreach (var s in _slots)
        {
            s.ExpAvg?.Dispose();
            s.ExpAvgSq?.Dispose();
            (s.ExpAvg, s.ExpAvgSq, s.Step) = (null, null, 0);
            if (!sc.Steps.TryGetValue(s.Name, out var step)) continue;
            s.Step = step;
            s.ExpAvg = Restore(state, $"{s.Name}.exp_avg", s.Parameter);
            s.ExpAvgSq = Restore(state, $"{s.Name}.exp_avg_sq", s.Parameter);
        }
        LearningRate = sc.LearningRate;
    }

    private static Tensor Restore(OptimizerCheckpoint state, string key, Parameter like)
    {
        if (!state.Tensors.TryGetValue(key, out var t)) throw new InvalidDataException($"optimizer state lacks tensor '{key}'.");
        if (!t.shape.SequenceEqual(like.shape))
            throw new InvalidDataException($"optimizer state tensor '{key}' has shape [{string.Join(", ", t.shape)}], the parameter has [{string.Join(", ", like.shape)}].");
        return t.to(like.dtype, like.device).clone();
    }
}
