using System.Text.Json.Nodes;
using Akka.Actor;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Scst.Actors.Messages;
using Scst.Actors.Weights;
using Scst.Training;
using Scst.Training.Configuration;
using Scst.Training.Telemetry;

namespace Scst.Actors.Pipeline;

/// <summary>An update taken from the scheduler and applied, waiting for its journal write.</summary>
/// <param name="Values">The update's metrics row, completed once the event is journaled.</param>
/// <param name="Skipped">Why the update applied nothing (non-finite loss, reward or gradient norm), or null.</param>
public sealed record AppliedUpdate(LearnerStepApplied Event, Dictionary<string, double> Values, int Epoch, int Images, string? Skipped = null)
{
    /// <summary>What the journal records: the step, or for a skipped update its own event, never an applied one.</summary>
    public object JournalEvent => Skipped is null ? Event : new LearnerStepSkipped(Event, Skipped);
}

/// <summary>
/// The actor learner's run between messages: the training core (<see cref="Learner"/>), the journaled state (policy
/// version, data cursor, consumption), the dispatch (<see cref="RolloutScheduler{TWorker}"/>), the weights on their
/// way to replicas and the run's statistics. <see cref="LearnerActor"/> receives, persists and tells; the steps in
/// between are here: resume and replay, planning an update, applying it, what follows its journal write, finishing.
/// </summary>
public sealed class LearnerRun
{
    readonly LearnerSettings settings;
    readonly Learner core;
    readonly WeightSharing weights;
    ScstConfig Config => settings.Config;
    readonly LearnerJournalState _journal = new();
    readonly LearnerRunStats _stats = new();
    RunProgress _best; // best validation value, its update, evaluations since
    NonfiniteGuard _nonfinite;
    long _weightsVersion;             // the version the model holds now
    (int Epoch, int Position) _journaledCursor; // the data cursor as the last journaled update left it
    long _lastApplied;                // timestamp of the previous update's apply (update_interval_s)
    bool _stopEarly;

    public Learner Core => core;
    public WeightSharing Weights => weights;
    public LearnerRunStats Stats => _stats;
    public LearnerJournalState Journal => _journal;
    public RolloutScheduler<IActorRef> Scheduler { get; }
    public bool Async => Config.Scst.Mode == ScstMode.Async;
    /// <summary>Journaled: updates applied = the policy version the model holds.</summary>
    public long Update { get; private set; }
    public DataCursor Cursor { get; private set; }
    public long WeightsVersion => _weightsVersion;
    public long Total => core.TotalUpdates;
    public bool Done => PastLastUpdate(Update) || _stopEarly || NonfiniteStop is not null;

    /// <summary>Whether <paramref name="update"/> is beyond the run's length or <c>--stop-after</c>.</summary>
    bool PastLastUpdate(long update) => update >= Total || (StopAfterUpdates is long stop && update >= stop);

    /// <summary><c>--stop-after</c> of the latest submission (a run continued without it runs to its end).</summary>
    public long? StopAfterUpdates { get; set; }
    public bool HasRemoteRollouts => weights.AnyRemote(Scheduler.RolloutWorkers);
    /// <summary>Set when run.max_nonfinite updates in a row were skipped: the learner stops with this error.</summary>
    public NonfiniteUpdatesException? NonfiniteStop { get; private set; }

    WorkerFingerprint? _rolloutFingerprint, _rewardFingerprint;

    /// <summary>Why a registering worker cannot serve this run (its fingerprint differs from the learner's), or null when it can.</summary>
    public string? Refusal(RegisterWorker r)
    {
        var expected = r.Kind == RegisterWorker.Rollout
            ? _rolloutFingerprint ??= WorkerFingerprint.ForRollout(core.Setup)
            : _rewardFingerprint ??= WorkerFingerprint.ForReward(Config, core.Setup.Corpus.Train.References);
        var differences = expected.Differences(r.Fingerprint);
        return differences.Count == 0 ? null : WorkerFingerprint.Describe(differences);
    }

    /// <param name="localReward">The learner's own reward pool, used while no reward node is registered (or null).</param>
    /// <param name="send">Delivers the scheduler's requests (the actor's Tell).</param>
    public LearnerRun(LearnerSettings settings, Learner core, WeightSharing weights, IActorRef? localReward, Action<IActorRef, IScstMessage> send, Action<string> warn)
    {
        (this.settings, this.core, this.weights) = (settings, core, weights);
        _best = core.Start();
        _nonfinite = new NonfiniteGuard(Config.Run.MaxNonfinite);
        StopAfterUpdates = settings.StopAfterUpdates;
        Cursor = core.NewCursor();
        Scheduler = new RolloutScheduler<IActorRef>(new RolloutSchedulerOptions(Async, settings.InFlightPerWorker, Config.Scst.MaxStaleness, settings.Timeout),
            serial => (long)RolloutGenerator.SamplingSeed(Config.Run.Seed, 1_000_000_000L + serial, 0),
            () => (Cursor.Next(Config.Run.BatchSizeTrain), Cursor.Epoch),
            version => core.Plan.TotalMicroBatches - core.Plan.MicroBatchesBefore(version),
            localReward, send, warn);
    }

    public void ApplyEvent(LearnerStepSkipped e, bool recovering)
    {
        _journal.Apply(e);
        Advance(e.Step, recovering);
    }

    public void ApplyEvent(LearnerStepApplied e, bool recovering)
    {
        _journal.Apply(e);
        Advance(e, recovering);
    }

    void Advance(LearnerStepApplied e, bool recovering)
    {
        Update = e.Update + 1;
        _journaledCursor = (e.CursorEpoch, e.CursorPosition);
        // Live, the cursor already stands where the event says (or, in sync, past the next update's batches, drawn while
        // this event was written); rebuilding it would only reshuffle the epoch again.
        if (recovering) Cursor = core.NewCursor(e.CursorEpoch, e.CursorPosition);
        Scheduler.DroppedStale = e.RolloutsDroppedStale;
    }

    /// <summary>
    /// After recovery: the last checkpoint (refusing a plain-trainer run or one ahead of the journal) — returns its
    /// update; the caller replays the journaled updates after it with <see cref="Replay"/>.
    /// </summary>
    public long RestoreCheckpoint()
    {
        if (core.Checkpoints.Find("latest") is null) return 0;
        // Refuses a CE run, another sample unit, runner or best metric; the journal places the cursor.
        (_best, var state, var file) = core.Restore("latest");
        if (state["actor_learner"] is null)
            throw new InvalidDataException($"{file}: the run directory holds a plain-trainer run (train without --role); use another --run-dir");
        if (_best.Update > Update)
            throw new InvalidDataException($"{file} is at update {_best.Update} but the learner journal ends at update {Update}: the journal belongs to another run. " +
                                           "Use the journal of this run folder (or a new --run-dir / database)");
        return _best.Update;
    }

    /// <summary>Journaled updates re-run on the learner itself: same batches, same sampling seeds, same step; then the carried work is queued again.</summary>
    public void Replay(long fromUpdate)
    {
        // A skipped update is not run again (it applied nothing): the replayed weights are the live run's whatever
        // made it non-finite, SCST_INJECT_NONFINITE included.
        var skippedAfter = Enumerable.Range(0, (int)(Update - fromUpdate)).Count(i => _journal.Steps[fromUpdate + i].Skipped is not null);
        var replayed = new NonfiniteGuard(int.MaxValue) { Skipped = _journal.NonfiniteSkipped - skippedAfter };
        for (var u = fromUpdate; u < Update; u++)
        {
            var step = _journal.Steps[u];
            var values = step.Skipped is null ? core.Scst!.RunLocal(step.Update, step.Epoch, step.Batches, core.Rollouts!, core.Reward!) : [];
            replayed.Count(step.Update + 1, step.Skipped, values, NullLogger.Instance);
            if (step.Skipped is not null) settings.Log.LogInformation("replay: update {Update} was journaled as skipped (non-finite {Reason}); not run again", step.Update + 1, step.Skipped);
            AfterUpdate(step.Update + 1, step.Epoch, values, replay: true);
        }
        _nonfinite = new NonfiniteGuard(Config.Run.MaxNonfinite) { Skipped = _journal.NonfiniteSkipped };
        foreach (var (epoch, ids) in _journal.CarriedPending) Scheduler.AddCarried(ids, epoch);
        _weightsVersion = Update;
    }

    /// <summary>
    /// Sync: the next update's micro-batches from the cursor, each spread over the rollout workers present now with the
    /// micro-batch's seed (a part's captions are its rows of the whole micro-batch's, so the split never shows).
    /// </summary>
    public void PlanSyncUpdate()
    {
        // The update the model's weights are for: the journaled count, or one more while the last update's write is in flight.
        var update = _weightsVersion;
        if (Async || Scheduler.HasSyncUpdate || PastLastUpdate(update)) return;
        for (var m = 0; m < core.Plan.MicroBatches(update); m++)
        {
            var ids = Cursor.Next(Config.Run.BatchSizeTrain);
            var seed = RolloutGenerator.SamplingSeed(Config.Run.Seed, update, m);
            Scheduler.AddSyncMicroBatch(ids, Cursor.Epoch, unchecked((long)seed), m);
        }
    }

    /// <summary>
    /// The scored work of the next update, if it is all there (async: staleness checked again at use), applied with
    /// <see cref="ScstUpdate.Apply"/>; returns the journal event to persist, or null while work is missing.
    /// </summary>
    public AppliedUpdate? TryApply()
    {
        var used = Scheduler.TakeUpdate(Update, core.Plan.MicroBatches(Update));
        if (used is null) return null;
        var (micros, scored, figures) = _stats.Join(used, Async, Update, core.Policy.Tokenizer.PadId);
        var epoch = Async ? used.Max(w => w.Epoch) : Cursor.Epoch;
        var step = System.Diagnostics.Stopwatch.StartNew();
        var values = core.Scst!.Apply(Update, epoch, scored, offPolicy: Async);
        values["learner_step_s"] = step.Elapsed.TotalSeconds; // with rollout_latency_max_s and persist_lag_s: a sync update's critical path
        _weightsVersion = Update + 1;
        var publish = System.Diagnostics.Stopwatch.StartNew();
        weights.ShareLocally(_weightsVersion);
        foreach (var (k, v) in figures) values[k] = v;
        values["rollouts_dropped_stale"] = Scheduler.DroppedStale;
        // The journal names whole micro-batches (parts joined in order), as replay and the plain trainer see them.
        var ev = LearnerJournalState.StepEvent(Update, Cursor.Epoch, Cursor.Position,
            [.. micros.Select(p => (p[0].Epoch, p.SelectMany(w => w.Ids).ToArray()))], [.. Scheduler.Pending(used).Select(w => (w.Epoch, w.Ids))], Scheduler.DroppedStale);
        // Sync: announce the new weights before the journal write returns, so replicas fetch them while it is fsynced.
        // Safe because a crash before the write re-derives exactly these weights for this version by replay.
        if (!Async && HasRemoteRollouts) weights.Publish(Update + 1);
        values["publish_s"] = publish.Elapsed.TotalSeconds;
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        if (_lastApplied != 0) values["update_interval_s"] = System.Diagnostics.Stopwatch.GetElapsedTime(_lastApplied, now).TotalSeconds;
        _lastApplied = now;
        return new AppliedUpdate(ev, values, epoch, used.Sum(w => w.Ids.Length), core.Optimization.LastSkip);
    }

    /// <summary>The update's event is journaled: consumption counted, metrics, validation and checkpoints, weights published.</summary>
    public void Journaled(AppliedUpdate u, LearnerStepApplied e, double persistLagS, int nodes)
    {
        if (u.Skipped is null) ApplyEvent(e, recovering: false);
        else ApplyEvent(new LearnerStepSkipped(e, u.Skipped), recovering: false);
        _journal.ClearCarriedPending();
        _journal.ForgetStep(e.Update - Math.Max(1, Config.Run.CheckpointEvery) * 2);
        var values = u.Values;
        values["persist_lag_s"] = persistLagS;
        values["samples_consumed"] = _journal.Samples;
        values["pending_rollouts"] = Scheduler.Queued + Scheduler.InFlight;
        values["nodes"] = nodes;
        _nonfinite.Count(Update, u.Skipped, values, core.Log);
        AfterUpdate(Update, u.Epoch, values, replay: false);
        NonfiniteStop = _nonfinite.Exhausted(Update);
        ScstMetrics.RecordUpdate(Async ? "scst-async" : "scst", u.Images, Update, values);
        // Sync announced the new weights before the journal write (TryApply); async publishes every publish_every updates.
        if (Async && HasRemoteRollouts && (Update % Math.Max(1, settings.PublishEvery) == 0 || Update >= Total)) weights.Publish(Update);
    }

    /// <summary>Metrics, then what follows an update in the plain trainer too (<see cref="Learner.AfterUpdate"/>: validation, checkpoints).</summary>
    void AfterUpdate(long update, int epoch, Dictionary<string, double> values, bool replay)
    {
        values["epoch"] = epoch;
        values["policy_version"] = update;
        settings.Metrics.Log("scst", update, values);
        if (!replay) core.LogUpdate(update, values);
        if (!replay && _stats.RolloutNodesRow() is { } byNode) settings.Metrics.Log("rollout_nodes", update, byNode);
        (_best, var stop) = core.AfterUpdate(ProgressAt(update), ExtraState(update));
        _stopEarly |= stop;
    }

    /// <summary>The final checkpoint, evaluation (when the run completed) and summary.json with the actor learner's keys.</summary>
    public TrainSummary Finish()
    {
        var stopped = (Update < Total && !_stopEarly) || NonfiniteStop is not null;
        return core.Finish(ProgressAt(Update), completed: !stopped, ExtraState(Update),
            _stats.Summary(_journal, Update, Scheduler.DroppedStale, core.Corpus.Train.Count, Config.Scst.Mode.Name()));
    }

    /// <summary>The run's progress as a checkpoint at <paramref name="update"/> records it: the journaled cursor and samples, the best so far.</summary>
    RunProgress ProgressAt(long update) => _best with { Update = update, Samples = _journal.Samples, Epoch = _journaledCursor.Epoch, Position = _journaledCursor.Position };

    static JsonObject ExtraState(long update) => new() { ["actor_learner"] = true, ["policy_version"] = update };
}
