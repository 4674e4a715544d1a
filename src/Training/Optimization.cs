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

    /// <summary>Sets the learning rate for update <paramref name="update"/>, clips, steps and clears gradients.</summary>
    public (double Lr, double GradNorm) Step(long update, int dataEpoch)
    {
        var (epoch, step) = Plan.ScheduleStep(update, dataEpoch);
        var lr = _scheduler.Step(epoch, step);
        var norm = _run.MaxGradNorm > 0 ? Gradients.ClipGlobalNorm(_optimizer.Parameters, _run.MaxGradNorm) : double.NaN;
        _optimizer.Step();
        _optimizer.ZeroGrad();
        return (lr, norm);
    }

    /// <summary>The moments and step counts as checkpoint tensors and scalars (no copy: write them before the next step).</summary>
    public OptimizerCheckpoint State() => _optimizer.StateDict(copy: false);

    public void Load(OptimizerCheckpoint state) => _optimizer.LoadStateDict(state);
}
