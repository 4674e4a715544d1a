using Scst.Training.Configuration;
using Scst.Model.Optim;

namespace Scst.Training;

/// <summary>
/// How a run's optimizer updates map onto iterations (micro-batches of <c>batch_size_train</c>), epochs and the LR
/// schedule's <c>(cur_epoch, cur_step)</c>. A pure function of the config and the number of training samples, so a
/// checkpoint needs only the update count and the data cursor.
/// <para>
/// With <c>run.runner</c> set it follows LAVIS's <c>_train_inner_loop</c>: an (inner) epoch is <c>I</c> iterations
/// (<c>runner_base</c>: <c>len(loader)</c> = ⌊samples / batch_size_train⌋, the loader drops the last partial batch;
/// <c>runner_iter</c>: <c>iters_per_inner_epoch</c>); the scheduler is stepped every iteration with
/// <c>(epoch, i)</c>, <c>i</c> restarting at 0 each epoch; the optimizer steps when <c>(i + 1) % accum_grad_iters == 0</c>,
/// so an update's rate is the one set at its last micro-batch, <c>i = (k + 1)·accum − 1</c> for the k-th update of the
/// epoch. The <c>I mod accum</c> micro-batches left at an epoch's end are backpropagated without a step, and LAVIS never
/// zeroes them: they join the first update of the next epoch (here: that update takes <c>accum + I mod accum</c>
/// micro-batches); after the last epoch they never reach a step, so they are not run. <c>runner_iter</c> runs whole
/// inner epochs, <c>range(0, max_iters, iters_per_inner_epoch)</c>: ⌈max_iters / iters_per_inner_epoch⌉ of them, while
/// the scheduler's <c>max_epoch</c> is <c>int(max_iters / iters_per_inner_epoch)</c> (floor).
/// </para>
/// <para>
/// Without <c>run.runner</c> (this project's loop before LAVIS's runners were mapped): an update is always
/// <c>accum_grad_iters</c> micro-batches; an epoch is ⌈samples / batch_size_train⌉ micro-batches (the last may be
/// short, nothing is dropped) and <c>max(1, ⌊that / accum⌋)</c> updates; <c>max_iters</c> counts updates. The LR is
/// set once per update: with <c>max_iters</c>, <c>(⌊u / P⌋, u mod P)</c> with <c>P = iters_per_inner_epoch</c> (default
/// <c>max_iters</c>) counted in updates and <c>max_epoch = ⌈max_iters / P⌉</c>; with <c>max_epoch</c>, the data
/// cursor's epoch and <c>u mod updates-per-epoch</c>.
/// </para>
/// </summary>
public sealed class UpdatePlan
{
    private readonly int _legacyInner; // legacy max_iters: updates per schedule epoch (0: schedule by data epoch)

    private UpdatePlan(string? runner, int iterationsPerEpoch, int accum, int updatesPerEpoch, long totalUpdates,
        int scheduleMaxEpoch, int legacyInner = 0)
    {
        Runner = runner;
        IterationsPerEpoch = iterationsPerEpoch;
        Accum = accum;
        UpdatesPerEpoch = updatesPerEpoch;
        TotalUpdates = totalUpdates;
        ScheduleMaxEpoch = scheduleMaxEpoch;
        _legacyInner = legacyInner;
    }

    /// <summary><c>runner_base</c>, <c>runner_iter</c>, or null (this project's loop).</summary>
    public string? Runner { get; }
    /// <summary>Micro-batches per (inner) epoch: LAVIS's <c>iters_per_epoch</c>; legacy: per data epoch.</summary>
    public int IterationsPerEpoch { get; }
    public int Accum { get; }
    /// <summary>Optimizer updates per (inner) epoch (legacy: per data epoch).</summary>
    public int UpdatesPerEpoch { get; }
    public long TotalUpdates { get; }
    /// <summary>The scheduler's <c>max_epoch</c>.</summary>
    public int ScheduleMaxEpoch { get; }
    /// <summary>LAVIS's training loader drops the last partial batch of each data epoch (<c>drop_last=True</c>).</summary>
    public bool DropLast => Runner is not null;

    public static UpdatePlan Create(RunOptions run, int trainSamples)
    {
        var accum = run.AccumGradIters;
        var bsz = run.BatchSizeTrain;
        switch (run.Runner)
        {
            case "runner_base":
            {
                var iters = trainSamples / bsz;
                if (iters < accum)
                    throw new InvalidDataException($"run.batch_size_train: {trainSamples} training samples give {iters} full batches of {bsz} per epoch " +
                                                   $"(LAVIS drops the last partial batch), fewer than accum_grad_iters ({accum}): no optimizer step would happen; lower batch_size_train or accum_grad_iters");
                var per = iters / accum;
                return new UpdatePlan("runner_base", iters, accum, per, (long)run.MaxEpoch!.Value * per, run.MaxEpoch.Value);
            }
            case "runner_iter":
            {
                var inner = run.ItersPerInnerEpoch!.Value;
                var maxIters = run.MaxIters!.Value;
                if (inner < accum)
                    throw new InvalidDataException($"run.iters_per_inner_epoch ({inner}) is below accum_grad_iters ({accum}): LAVIS would never step the optimizer; raise iters_per_inner_epoch");
                if (trainSamples / bsz < 1)
                    throw new InvalidDataException($"run.batch_size_train: {trainSamples} training samples make no full batch of {bsz} (LAVIS drops the last partial batch); lower batch_size_train");
                var loops = (maxIters + inner - 1) / inner;
                var per = inner / accum;
                return new UpdatePlan("runner_iter", inner, accum, per, (long)loops * per, maxIters / inner);
            }
            default:
            {
                var batches = (trainSamples + bsz - 1) / bsz;
                var per = Math.Max(1, batches / accum);
                if (run.MaxIters is int iters)
                {
                    var inner = run.ItersPerInnerEpoch ?? iters;
                    return new UpdatePlan(null, batches, accum, per, iters, (iters + inner - 1) / inner, inner);
                }
                return new UpdatePlan(null, batches, accum, per, (long)run.MaxEpoch!.Value * per, run.MaxEpoch.Value);
            }
        }
    }

    /// <summary>The run's LAVIS scheduler over <see cref="ScheduleMaxEpoch"/> epochs, setting the rate on <paramref name="optimizer"/> when given.</summary>
    public ILrScheduler Scheduler(RunOptions run, AdamW? optimizer) => run.LrSched switch
    {
        "linear_warmup_step_lr" => new LinearWarmupStepLRScheduler(optimizer, ScheduleMaxEpoch, run.MinLr, run.InitLr, run.LrDecayRate, run.WarmupLr, run.WarmupSteps),
        // LAVIS's ConstantLRScheduler: the epoch-0 warmup, then init_lr (a step schedule with decay 1 floored at init_lr).
        "constant_lr" => new LinearWarmupStepLRScheduler(optimizer, ScheduleMaxEpoch, run.InitLr, run.InitLr, 1.0, run.WarmupLr, run.WarmupSteps),
        _ => new LinearWarmupCosineLRScheduler(optimizer, ScheduleMaxEpoch, run.MinLr, run.InitLr, run.WarmupSteps, run.WarmupLr),
    };

    /// <summary>How many micro-batches update <paramref name="update"/> accumulates.</summary>
    public int MicroBatches(long update)
    {
        if (Runner is null || update < UpdatesPerEpoch || update % UpdatesPerEpoch != 0) return Accum;
        return Accum + IterationsPerEpoch % Accum;
    }

    /// <summary>Micro-batches consumed before update <paramref name="update"/> starts.</summary>
    public long MicroBatchesBefore(long update)
    {
        if (Runner is null) return update * Accum;
        var epochs = update == 0 ? 0 : (update - 1) / UpdatesPerEpoch; // epochs whose leftover has joined an update by then
        return update * Accum + epochs * (IterationsPerEpoch % Accum);
    }

    /// <summary>Every micro-batch the run consumes.</summary>
    public long TotalMicroBatches => MicroBatchesBefore(TotalUpdates);

    /// <summary>
    /// The scheduler's <c>(cur_epoch, cur_step)</c> in effect when update <paramref name="update"/> steps the optimizer
    /// (<paramref name="dataEpoch"/>: the data cursor's epoch, used only by the legacy epoch loop).
    /// </summary>
    public (int Epoch, int Step) ScheduleStep(long update, int dataEpoch)
    {
        if (Runner is not null)
        {
            var k = update % UpdatesPerEpoch;
            return ((int)(update / UpdatesPerEpoch), (int)((k + 1) * Accum - 1));
        }
        if (_legacyInner > 0) return ((int)(update / _legacyInner), (int)(update % _legacyInner));
        return (dataEpoch, (int)(update % UpdatesPerEpoch));
    }
}
