using System.Text.Json.Serialization;

namespace Scst.Model.Optim;

/// <summary>
/// LAVIS's learning-rate schedulers (<c>lavis/common/optims.py</c>). They are stateless: the trainer calls
/// <see cref="Step"/> before every iteration with the current epoch and the iteration within the epoch, and the
/// rate depends on nothing else, so resuming needs only (epoch, step).
/// </summary>
public interface ILrScheduler
{
    /// <summary>Computes the rate for this (epoch, iteration), sets it on the optimizer and returns it.</summary>
    double Step(int curEpoch, int curStep);

    double LearningRate(int curEpoch, int curStep);
}

public static class LrSchedules
{
    /// <summary><c>warmup_lr_schedule</c>: <c>min(max_lr, init_lr + (max_lr − init_lr)·step / max(max_step, 1))</c>.</summary>
    public static double Warmup(int step, int maxStep, double initLr, double maxLr) =>
        Math.Min(maxLr, initLr + (maxLr - initLr) * step / Math.Max(maxStep, 1));

    /// <summary><c>cosine_lr_schedule</c>: <c>(init_lr − min_lr)·½·(1 + cos(π·epoch/max_epoch)) + min_lr</c>.</summary>
    public static double Cosine(int epoch, int maxEpoch, double initLr, double minLr) =>
        (initLr - minLr) * 0.5 * (1.0 + Math.Cos(Math.PI * epoch / maxEpoch)) + minLr;

    /// <summary><c>step_lr_schedule</c>: <c>max(min_lr, init_lr·decay_rate^epoch)</c>.</summary>
    public static double StepDecay(int epoch, double initLr, double minLr, double decayRate) =>
        Math.Max(minLr, initLr * Math.Pow(decayRate, epoch));
}

/// <summary>
/// LAVIS's epoch-0 warmup, which both of its schedulers share: a per-iteration linear warmup from <c>warmup_start_lr</c>
/// (default <c>init_lr</c>) to <c>init_lr</c> over <c>warmup_steps</c>, then held at <c>init_lr</c> for the rest of
/// epoch 0; from epoch 1 the subclass's per-epoch rule. As in LAVIS the warmup is assumed to fit in the first epoch.
/// </summary>
public abstract class LinearWarmupLRScheduler(AdamW? optimizer, int maxEpoch, double minLr, double initLr, int warmupSteps, double warmupStartLr)
    : ILrScheduler
{
    [JsonPropertyName("max_epoch")] public int MaxEpoch { get; } = maxEpoch;
    [JsonPropertyName("min_lr")] public double MinLr { get; } = minLr;
    [JsonPropertyName("init_lr")] public double InitLr { get; } = initLr;
    [JsonPropertyName("warmup_steps")] public int WarmupSteps { get; } = warmupSteps;
    [JsonPropertyName("warmup_start_lr")] public double WarmupStartLr { get; } = warmupStartLr >= 0 ? warmupStartLr : initLr;

    /// <summary>The rate of an epoch after the warmup one (<paramref name="curEpoch"/> &gt;= 1).</summary>
    protected abstract double AfterWarmup(int curEpoch);

    public double LearningRate(int curEpoch, int curStep) => curEpoch == 0
        ? LrSchedules.Warmup(curStep, WarmupSteps, WarmupStartLr, InitLr)
        : AfterWarmup(curEpoch);

    public double Step(int curEpoch, int curStep)
    {
        var lr = LearningRate(curEpoch, curStep);
        if (optimizer is not null) optimizer.LearningRate = lr;
        return lr;
    }
}

/// <summary><c>linear_warmup_cosine_lr</c>: the warmup, then a per-epoch cosine from <c>init_lr</c> to <c>min_lr</c> at <c>max_epoch</c>.</summary>
public sealed class LinearWarmupCosineLRScheduler(AdamW? optimizer, int maxEpoch, double minLr, double initLr, int warmupSteps = 0, double warmupStartLr = -1)
    : LinearWarmupLRScheduler(optimizer, maxEpoch, minLr, initLr, warmupSteps, warmupStartLr)
{
    protected override double AfterWarmup(int curEpoch) => LrSchedules.Cosine(curEpoch, MaxEpoch, InitLr, MinLr);
}

/// <summary><c>linear_warmup_step_lr</c>: the warmup, then <c>max(min_lr, init_lr·decay_rate^epoch)</c>.</summary>
public sealed class LinearWarmupStepLRScheduler(AdamW? optimizer, int maxEpoch, double minLr, double initLr, double decayRate = 1, double warmupStartLr = -1, int warmupSteps = 0)
    : LinearWarmupLRScheduler(optimizer, maxEpoch, minLr, initLr, warmupSteps, warmupStartLr)
{
    [JsonPropertyName("decay_rate")] public double DecayRate { get; } = decayRate;

    protected override double AfterWarmup(int curEpoch) => LrSchedules.StepDecay(curEpoch, InitLr, MinLr, DecayRate);
}
