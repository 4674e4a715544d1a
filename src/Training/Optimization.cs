using Microsoft.Extensions.Logging;
using Scst.Model.Blip2;
using Scst.Model.Optim;
using Scst.Training.Configuration;

namespace Scst.Training;

/// <summary>
/// The optimizer side of a run: LAVIS's AdamW parameter groups, the LR schedule and the <see cref="UpdatePlan"/> that
/// maps updates onto micro-batches and schedule steps. <see cref="Step"/> ends every update, CE or SCST.
/// </summary>
public sealed class Optimization
{
    private readonly RunOptions _run;
    private readonly AdamW _optimizer;
    private readonly ILrScheduler _scheduler;

    public Optimization(RunOptions run, Blip2T5 model, int trainSamples, ILogger log)
    {
        _run = run;
        _optimizer = ParameterGroups.LavisAdamW(model, run.InitLr, run.WeightDecay, run.Beta2, run.LrLayerDecay);
        if (run.LrLayerDecay != 1.0 && !_optimizer.Groups.Any(g => g.Name.StartsWith("vit_layer_", StringComparison.Ordinal)))
            log.LogInformation("run.lr_layer_decay {Decay}: no ViT parameter trains (model.freeze_vit), so every group keeps scale 1", run.LrLayerDecay);
        Plan = UpdatePlan.Create(run, trainSamples);
        _scheduler = Plan.Scheduler(run, _optimizer);
    }

    /// <summary>How updates map onto micro-batches, epochs and the LR schedule (<c>run.runner</c>).</summary>
    public UpdatePlan Plan { get; }
    /// <summary>The optimizer's parameter groups (weight decay and LR scale each).</summary>
    public IReadOnlyList<ParameterGroup> Groups => _optimizer.Groups;

    /// <summary>
    /// Why the last <see cref="Step"/> took no optimizer step — "loss", "reward" or "gradient norm", whichever was
    /// non-finite (<see cref="NonfiniteGuard"/>) — or null when it stepped.
    /// </summary>
    public string? LastSkip { get; private set; }

    /// <summary>
    /// Sets the learning rate for update <paramref name="update"/>, clips, steps and clears gradients. With
    /// <paramref name="nonfinite"/> (the caller saw a non-finite loss or reward), or a non-finite gradient norm, it takes
    /// no step and only clears the gradients: weights and optimizer state stay as they were (<see cref="LastSkip"/>).
    /// The returned norm is the one before clipping, NaN when <c>max_grad_norm</c> is 0 (not clipped).
    /// </summary>
    public (double Lr, double GradNorm) Step(long update, int dataEpoch, string? nonfinite = null)
    {
        var (epoch, step) = Plan.ScheduleStep(update, dataEpoch);
        var lr = _scheduler.Step(epoch, step);
        LastSkip = nonfinite;
        var norm = double.NaN;
        if (nonfinite is null)
        {
            // Without clipping the norm is still taken: a NaN gradient can come from a finite loss.
            var total = _run.MaxGradNorm > 0 ? Gradients.ClipGlobalNorm(_optimizer.Parameters, _run.MaxGradNorm) : Gradients.GlobalNorm(_optimizer.Parameters);
            if (!double.IsFinite(total)) LastSkip = "gradient norm";
            else if (_run.MaxGradNorm > 0) norm = total;
        }
        if (LastSkip is null) _optimizer.Step();
        _optimizer.ZeroGrad();
        return (lr, norm);
    }

    /// <summary>The moments and step counts as checkpoint tensors and scalars (no copy: write them before the next step).</summary>
    public OptimizerCheckpoint State() => _optimizer.StateDict(copy: false);

    public void Load(OptimizerCheckpoint state) => _optimizer.LoadStateDict(state);
}
