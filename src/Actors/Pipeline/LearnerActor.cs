using System.Collections.Immutable;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Persistence;
using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;
using Scst.Training.Telemetry;
using Scst.Training;
using Scst.Actors.Weights;

namespace Scst.Actors.Pipeline;

/// <summary>
/// The SCST learner as a persistent cluster singleton. It owns the data cursor (the plain trainer's
/// <see cref="DataCursor"/> order), hands micro-batches to whichever rollout workers are registered, sends their
/// captions to reward workers, and applies the update with the training core's own <see cref="ScstUpdate"/> (the
/// <see cref="Learner"/> does validation and checkpoints, as for the plain trainer). Each applied update is one journal event naming the batches it consumed,
/// so consumption and update are atomic. A restart loads the last checkpoint and re-runs the journaled updates after it
/// (rollouts regenerated locally from their seeds): in sync mode that reproduces the uninterrupted run's weights exactly.
/// </summary>
public sealed class LearnerActor : ReceivePersistentActor, IWithTimers
{
    public const string PersistenceIdValue = "scst-learner";
    public const string Dispatcher = "scst.learner-dispatcher";
    /// <summary>Cluster role of the `status` command's short-lived member; it never registers as a worker.</summary>
    public const string StatusRole = "status";

    sealed record Tick { public static readonly Tick Instance = new(); }
    sealed record WaitingTick { public static readonly WaitingTick Instance = new(); }

    readonly LearnerSettings _s;
    readonly ScstConfig _config;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly bool _async;
    Learner _core = null!;
    WeightSharing _weights = null!;
    RolloutScheduler<IActorRef> _scheduler = null!;

    // Journaled state (the dropped-stale count lives in the scheduler)
    long _update;
    DataCursor _cursor = null!;
    readonly LearnerJournalState _journal = new();

    // Running state
    bool _running, _finished;
    long _weightsVersion; // the version the model holds now
    readonly LearnerRunStats _stats = new();
    RunProgress _best = null!; // best validation value, its update, evaluations since
    bool _stopEarly;

    public ITimerScheduler Timers { get; set; } = null!;
    public override string PersistenceId => PersistenceIdValue;

    public static Props Props(LearnerSettings s) => Akka.Actor.Props.Create(() => new LearnerActor(s)).WithDispatcher(Dispatcher);

    int Accum => _config.Run.AccumGradIters;
    int BatchSize => _config.Run.BatchSizeTrain;
    long Total => _core.TotalUpdates;

    public LearnerActor(LearnerSettings s)
    {
        _s = s;
        _config = s.Config;
        if (!_config.IsScst) throw new ArgumentException("the actor learner runs SCST: the config needs an scst section (CE pre-training runs with the plain trainer)");
        _async = _config.Scst.Mode == ScstMode.Async;

        Recover<LearnerStepApplied>(ApplyEvent);
        Recover<RecoveryCompleted>(_ => Start());

        Command<RegisterWorker>(OnRegister);
        Command<RolloutResult>(OnRollout);
        Command<ScoreResult>(OnScore);
        Command<Terminated>(t => RemoveWorker(t.ActorRef, "terminated"));
        Command<Tick>(_ => OnTick());
        Command<WaitingTick>(_ => OnWaitingTick());
        Command<WeightsAvailable>(_ => { });
        Command<GetLearnerStatus>(_ => Sender.Tell(CurrentStatus()));
        // A `status` client joins as a member for a moment; it is not a node of the run.
        Command<ClusterEvent.MemberUp>(m => { if (!m.Member.HasRole(StatusRole)) _stats.NodeSeen(m.Member.Address.ToString()); });
        Command<ClusterEvent.IMemberEvent>(_ => { });
        Command<Status.Failure>(f => _log.Error(f.Cause, "learner: a child failed"));
    }

    protected override void PreStart()
    {
        Directory.CreateDirectory(_s.RunDir);
        try
        {
            _core = Learner.Create(_config, _s.RunDir, _s.Metrics, _s.Log);
            _core.Evaluator.Progress = _s.Progress;
        }
        catch (Exception e)
        {
            // The singleton manager would restart us forever; the host must hear why and exit.
            _s.Done.TrySetException(e);
            throw;
        }
        _cursor = _core.NewCursor();
        _best = _core.Start();
        _weights = new WeightSharing(_core, Context.ActorOf(WeightPublisher.Props(_s.ChunkSize, _s.KeepVersions), "weights"), _s.RunDir, _s.KeepVersions);
        var localReward = _s.LocalReward is null ? null : Context.ActorOf(RewardPool.Props(_s.LocalReward, _s.RewardPoolSize, null), "reward");
        _scheduler = new RolloutScheduler<IActorRef>(new RolloutSchedulerOptions(_async, _s.InFlightPerWorker, _config.Scst.MaxStaleness, _s.Timeout),
            serial => (long)RolloutGenerator.SamplingSeed(_config.Run.Seed, 1_000_000_000L + serial, 0),
            () => (_cursor.Next(BatchSize), _cursor.Epoch),
            version => _core.Plan.TotalMicroBatches - _core.Plan.MicroBatchesBefore(version),
            localReward, (worker, message) => worker.Tell(message), warning => _log.Warning("{0}", warning));
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp));
        base.PreStart();
    }

    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        _core?.Dispose();
        base.PostStop();
    }

    // ------------------------------------------------------------------------------------------------------
    // Journal

    void ApplyEvent(LearnerStepApplied e)
    {
        _journal.Apply(e);
        _update = e.Update + 1;
        // Live, the cursor already stands where the event says; rebuilding it would only reshuffle the epoch again.
        if (IsRecovering) _cursor = _core.NewCursor(e.CursorEpoch, e.CursorPosition);
        _scheduler.DroppedStale = e.RolloutsDroppedStale;
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        _s.Done.TrySetException(new IOException($"the learner journal could not record update {_update}: {cause.Message}", cause));
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _s.Done.TrySetException(new InvalidDataException($"the learner journal cannot be read back: {reason.Message}", reason));
        base.OnRecoveryFailure(reason, message);
    }

    // ------------------------------------------------------------------------------------------------------
    // Start: checkpoint + replay of the journaled updates after it

    void Start()
    {
        try
        {
            long fromUpdate = 0;
            if (_core.Checkpoints.Find("latest") is not null)
            {
                // Refuses a CE run, another sample unit, runner or best metric; the journal places the cursor.
                (_best, var state, var file) = _core.Restore("latest");
                fromUpdate = _best.Update;
                if (state["actor_learner"] is null)
                    throw new InvalidDataException($"{file}: the run directory holds a plain-trainer run (train without --role); use another --run-dir");
                if (fromUpdate > _update)
                    throw new InvalidDataException($"{file} is at update {fromUpdate} but the learner journal ends at update {_update}: the journal belongs to another run. " +
                                                   "Use the journal of this run folder (or a new --run-dir / database)");
            }
            if (_update > 0)
            {
                _log.Info("learner: journal at update {0}, checkpoint at update {1}; replaying {2} updates", _update, fromUpdate, _update - fromUpdate);
                for (var u = fromUpdate; u < _update; u++) Replay(_journal.Steps[u]);
            }
            foreach (var (epoch, ids) in _journal.CarriedPending) _scheduler.AddCarried(ids, epoch);
            _running = true;
            _weightsVersion = _update;
            Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.FromMilliseconds(500));
            _waitingSince = DateTime.UtcNow;
            var every = _s.WaitingReportEvery ?? TimeSpan.FromSeconds(10);
            Timers.StartPeriodicTimer("waiting", WaitingTick.Instance, every, every);
            _log.Info("learner: {0} SCST at update {1}/{2} (policy v{1}), {3} images per update", _async ? "async" : "sync", _update, Total, BatchSize * Accum);
            Next();
        }
        catch (Exception e)
        {
            _log.Error(e, "learner cannot start: {0}", e.Message);
            _s.Done.TrySetException(e);
            Context.Stop(Self);
        }
    }

    /// <summary>A journaled update re-run on the learner itself: same batches, same sampling seeds, same step.</summary>
    void Replay(StepRecord step)
    {
        var values = _core.Scst!.RunLocal(step.Update, step.Epoch, step.Batches, _core.Rollouts!, _core.Reward!);
        _weightsVersion = step.Update + 1;
        AfterUpdate(step.Update + 1, step.Epoch, values, replay: true);
    }

    // ------------------------------------------------------------------------------------------------------
    // Workers

    void OnRegister(RegisterWorker r)
    {
        var added = r.Kind == RegisterWorker.Rollout ? _scheduler.AddRolloutWorker(Sender) : r.Kind == RegisterWorker.Reward && _scheduler.AddRewardWorker(Sender);
        if (!added) return;
        _stats.NodeSeen(r.Node);
        Context.Watch(Sender);
        var local = r.Kind == RegisterWorker.Rollout && _weights.Join(Sender);
        if (r.Kind == RegisterWorker.Rollout && !local && _weights.PublishedVersion != _weightsVersion) _weights.Publish(_weightsVersion);
        Sender.Tell(new WorkerWelcome(_weights.Publisher, _update));
        if (local) _weights.ShareLocally(_weightsVersion, Sender);
        _log.Info("learner: {0} worker {1} joined ({2} rollout, {3} reward workers)", r.Kind, Sender.Path, _scheduler.RolloutWorkers.Count, _scheduler.RewardWorkers.Count);
        if (_finished) { Sender.Tell(new TrainingFinished(_update)); return; }
        Pump();
    }

    void RemoveWorker(IActorRef w, string why)
    {
        if (!_scheduler.IsWorker(w)) return;
        _weights.Leave(w);
        _log.Warning("learner: worker {0} left ({1}); its work goes to the others", w.Path, why);
        _scheduler.RemoveWorker(w, DateTime.UtcNow);
        Pump();
    }

    DateTime _waitingSince;
    long _progressReported = -1;

    /// <summary>The update count to the console, once per change (a finished phase reported again would read as a new one).</summary>
    void ReportProgress()
    {
        if (_s.Progress is null || _core is null || !_running || _update == _progressReported) return;
        _progressReported = _update;
        _s.Progress(new TrainingProgress("scst", _update, Total, new Dictionary<string, double>()));
    }

    /// <summary>A learner without workers says so, and how to start one, instead of falling silent.</summary>
    void OnWaitingTick()
    {
        if (!_running || _finished) return;
        var missing = _scheduler.RolloutWorkers.Count == 0 ? RegisterWorker.Rollout : !_scheduler.CanScore ? RegisterWorker.Reward : null;
        if (missing is null) { _waitingSince = DateTime.UtcNow; return; }
        _log.Info("{0}", WaitingMessage(missing, _update, Total, DateTime.UtcNow - _waitingSince,
            missing == RegisterWorker.Rollout ? _s.RolloutCommand : null, Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString()));
    }

    public static string WaitingMessage(string kind, long update, long total, TimeSpan waited, string? command, string learnerAddress) =>
        $"learner: waiting for a {kind} worker at update {update}/{total} ({waited.TotalSeconds:F0} s so far); " +
        (command is not null ? $"start one with: {command}" : $"start a node with --role {kind} --seed-nodes {learnerAddress} (train --config: the learner's config)");

    void ReportQueues() => ScstMetrics.SetQueueDepths(_scheduler.Queued, _scheduler.AtRolloutWorkers, _scheduler.Ready);

    LearnerStatus CurrentStatus() => new(_update, _update, _core is null ? 0 : Total, _config.Scst.Mode.Name(), _running, _finished, _journal.Samples, _scheduler.DroppedStale,
        _scheduler.RolloutWorkers.Count, _scheduler.RewardWorkers.Count, _scheduler.Queued, _scheduler.InFlight, _cursor?.Epoch ?? 0, _cursor?.Position ?? 0,
        Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString());

    void OnTick()
    {
        ReportQueues();
        ReportProgress();
        if (!_running || _finished) return;
        _scheduler.ResendOverdue(DateTime.UtcNow);
        Pump();
    }

    void Pump()
    {
        if (_running && !_finished) _scheduler.Pump(_update, DateTime.UtcNow);
    }

    void OnRollout(RolloutResult r)
    {
        if (_scheduler.OnRollout(r, _update, DateTime.UtcNow) is not { } work) return; // answered twice, or re-dispatched
        ScstMetrics.RolloutLatency.Record(work.RolloutLatencyS);
        _stats.RolloutFrom(r.Node);
        Pump();
    }

    void OnScore(ScoreResult s)
    {
        if (_scheduler.OnScore(s)) TryUpdate();
    }

    // ------------------------------------------------------------------------------------------------------
    // Updates

    void Next()
    {
        if (_update >= Total || _stopEarly || (_s.StopAfterUpdates is int stop && _update >= stop)) { Finish(); return; }
        if (!_async && !_scheduler.HasSyncUpdate)
        {
            for (var m = 0; m < _core.Plan.MicroBatches(_update); m++)
            {
                var ids = _cursor.Next(BatchSize);
                var seed = RolloutGenerator.SamplingSeed(_config.Run.Seed, _update, m);
                foreach (var (partIds, partSeed) in RolloutGenerator.Parts(ids, seed, _config.Scst.RolloutSplits))
                    _scheduler.AddSyncPart(partIds, _cursor.Epoch, unchecked((long)partSeed), m);
            }
        }
        Pump();
    }

    void TryUpdate()
    {
        if (_finished) return;
        // Async: versions may have moved on while these were scored, so staleness is checked again at use.
        var used = _scheduler.TakeUpdate(_update, _core.Plan.MicroBatches(_update));
        if (used is null)
        {
            if (_async) Pump();
            return;
        }

        var (micros, scored, figures) = _stats.Join(used, _async, _update, _core.Policy.Tokenizer.PadId);
        var epoch = _async ? used.Max(w => w.Epoch) : _cursor.Epoch;
        var values = _core.Scst!.Apply(_update, epoch, scored, offPolicy: _async);
        _weightsVersion = _update + 1;
        _weights.ShareLocally(_weightsVersion);
        foreach (var (k, v) in figures) values[k] = v;
        values["rollouts_dropped_stale"] = _scheduler.DroppedStale;

        // The journal names whole micro-batches (parts joined in order), as replay and the plain trainer see them.
        var ev = LearnerJournalState.StepEvent(_update, _cursor.Epoch, _cursor.Position,
            [.. micros.Select(p => (p[0].Epoch, p.SelectMany(w => w.Ids).ToArray()))], [.. _scheduler.Pending(used).Select(w => (w.Epoch, w.Ids))], _scheduler.DroppedStale);
        // Sync: announce the new weights before the journal write returns, so replicas fetch them while it is fsynced.
        // Safe because a crash before the write re-derives exactly these weights for this version by replay.
        var publishedEarly = !_async;
        if (publishedEarly && HasRemoteRollouts) _weights.Publish(_update + 1);
        var persistStarted = Stopwatch.GetTimestamp();
        Persist(ev, e =>
        {
            var lag = Stopwatch.GetElapsedTime(persistStarted).TotalSeconds;
            ScstMetrics.PersistenceLag.Record(lag);
            ApplyEvent(e);
            _journal.ClearCarriedPending();
            _journal.ForgetStep(e.Update - Math.Max(1, _config.Run.CheckpointEvery) * 2);
            values["persist_lag_s"] = lag;
            values["samples_consumed"] = _journal.Samples;
            values["pending_rollouts"] = _scheduler.Queued + _scheduler.InFlight;
            values["nodes"] = Akka.Cluster.Cluster.Get(Context.System).State.Members.Count(m => m.Status == MemberStatus.Up && !m.HasRole(StatusRole));
            AfterUpdate(_update, epoch, values, replay: false);
            ScstMetrics.RecordUpdate(_async ? "scst-async" : "scst", used.Sum(w => w.Ids.Length), _update, values);
            ReportQueues();
            if (!publishedEarly && HasRemoteRollouts && (_update % Math.Max(1, _s.PublishEvery) == 0 || _update >= Total)) _weights.Publish(_update);
            Next();
        });
    }

    /// <summary>Metrics, then what follows an update in the plain trainer too (<see cref="Learner.AfterUpdate"/>: validation, checkpoints).</summary>
    void AfterUpdate(long update, int epoch, Dictionary<string, double> values, bool replay)
    {
        values["epoch"] = epoch;
        values["policy_version"] = update;
        _s.Metrics.Log("scst", update, values);
        if (!replay) _core.LogUpdate(update, values);
        if (!replay && _stats.RolloutNodesRow() is { } byNode) _s.Metrics.Log("rollout_nodes", update, byNode);
        (_best, var stop) = _core.AfterUpdate(ProgressAt(update), ExtraState(update));
        _stopEarly |= stop;
    }

    /// <summary>The run's progress as a checkpoint at <paramref name="update"/> records it: the journaled cursor and samples, the best so far.</summary>
    RunProgress ProgressAt(long update) => _best with { Update = update, Samples = _journal.Samples, Epoch = _cursor.Epoch, Position = _cursor.Position };

    static JsonObject ExtraState(long update) => new() { ["actor_learner"] = true, ["policy_version"] = update };

    bool HasRemoteRollouts => _weights.AnyRemote(_scheduler.RolloutWorkers);

    void Finish()
    {
        if (_finished) return;
        ReportProgress();
        _finished = true;
        _running = false;
        var stopped = _update < Total && !_stopEarly;
        var summary = _core.Finish(ProgressAt(_update), completed: !stopped, ExtraState(_update),
            _stats.Summary(_journal, _update, _scheduler.DroppedStale, _core.Corpus.Train.Count, _config.Scst.Mode.Name()));
        _log.Info("learner: finished at update {0}; {1} samples, {2} stale rollouts dropped, {3} nodes seen", _update, _journal.Samples, _scheduler.DroppedStale, _stats.NodesSeen);
        foreach (var w in _scheduler.RolloutWorkers.Concat(_scheduler.RewardWorkers)) w.Tell(new TrainingFinished(_update));
        _s.Done.TrySetResult(summary);
    }
}
