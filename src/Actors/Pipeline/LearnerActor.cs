using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Persistence;
using Scst.Actors.Weights;
using Scst.Training;
using Scst.Training.Configuration;
using Scst.Training.Telemetry;

namespace Scst.Actors.Pipeline;

/// <summary>
/// The SCST learner as a persistent cluster singleton, the distributed driver of the training core: it hands the
/// data cursor's micro-batches to rollout workers (<see cref="RolloutScheduler{TWorker}"/>), their captions to reward
/// workers, and applies each update with the core's <see cref="ScstUpdate"/>. Each applied update is one journal event
/// naming the batches it consumed, so consumption and update are atomic; a restart loads the last checkpoint and
/// replays the journaled updates after it, which in sync mode reproduces the uninterrupted run's weights exactly.
/// This actor receives, persists and tells; the steps between messages are <see cref="LearnerRun"/>'s.
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
    readonly ILoggingAdapter _log = Context.GetLogger();
    LearnerRun _run = null!;
    bool _running, _finished, _stopped;
    DateTime _waitingSince;
    long _progressReported = -1;
    readonly HashSet<IActorRef> _refused = [];

    public ITimerScheduler Timers { get; set; } = null!;
    public override string PersistenceId => PersistenceIdValue;

    public static Props Props(LearnerSettings s) => Akka.Actor.Props.Create(() => new LearnerActor(s)).WithDispatcher(Dispatcher);

    RolloutScheduler<IActorRef> Scheduler => _run.Scheduler;

    public LearnerActor(LearnerSettings s)
    {
        _s = s;
        if (!s.Config.IsScst) throw new ArgumentException("the actor learner runs SCST: the config needs an scst section (CE pre-training runs with the plain trainer)");

        Recover<LearnerStepApplied>(e => _run.ApplyEvent(e, recovering: true));
        Recover<LearnerStepSkipped>(e => _run.ApplyEvent(e, recovering: true));
        Recover<RecoveryCompleted>(_ => Start());

        Command<RegisterWorker>(OnRegister);
        Command<RolloutResult>(OnRollout);
        Command<ScoreResult>(s => { if (Scheduler.OnScore(s, DateTime.UtcNow)) TryUpdate(); });
        Command<Terminated>(t => RemoveWorker(t.ActorRef, "terminated"));
        Command<Tick>(_ => OnTick());
        Command<WaitingTick>(_ => OnWaitingTick());
        Command<WeightsAvailable>(_ => { });
        Command<GetLearnerStatus>(_ => Sender.Tell(CurrentStatus()));
        // Persist stashes commands until its handler has run, so a stop never lands between an update and its journal write.
        Command<StopLearner>(_ => { if (_run is not null && !_finished) Finish(stopped: true); });
        // A `status` client joins as a member for a moment; it is not a node of the run.
        Command<ClusterEvent.MemberUp>(m => { if (!m.Member.HasRole(StatusRole)) _run.Stats.NodeSeen(m.Member.Address.ToString()); });
        Command<ClusterEvent.IMemberEvent>(_ => { });
        Command<Status.Failure>(f => _log.Error(f.Cause, "learner: a child failed"));
    }

    protected override void PreStart()
    {
        Directory.CreateDirectory(_s.RunDir);
        Learner core;
        WeightServer weightServer;
        try
        {
            core = Learner.Create(_s.Config, _s.RunDir, _s.Metrics, _s.Log);
            core.Evaluator.Progress = _s.Progress;
            weightServer = WeightServer.Start(_s.WeightPlane);
        }
        catch (Exception e)
        {
            // The singleton manager would restart us forever; the host must hear why and exit.
            _s.Done.TrySetException(e);
            throw;
        }
        var weights = new WeightSharing(core, Context.ActorOf(WeightPublisher.Props(weightServer), "weights"), _s.RunDir, _s.KeepVersions, _s.WeightsInAmpDType);
        var localReward = _s.LocalReward is null ? null : Context.ActorOf(RewardPool.Props(_s.LocalReward, _s.RewardPoolSize, null), "reward");
        _run = new LearnerRun(_s, core, weights, localReward, (worker, message) => worker.Tell(message), warning => _log.Warning("{0}", warning));
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp));
        base.PreStart();
    }

    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        _run?.Core.Dispose();
        base.PostStop();
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        _s.Done.TrySetException(new IOException($"the learner journal could not record update {_run.Update}: {cause.Message}", cause));
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _s.Done.TrySetException(new InvalidDataException($"the learner journal cannot be read back: {reason.Message}", reason));
        base.OnRecoveryFailure(reason, message);
    }

    /// <summary>After recovery: the last checkpoint, the journaled updates after it replayed, then work.</summary>
    void Start()
    {
        try
        {
            var fromUpdate = _run.RestoreCheckpoint();
            if (_run.Update > 0)
                _log.Info("learner: journal at update {0}, checkpoint at update {1}; replaying {2} updates", _run.Update, fromUpdate, _run.Update - fromUpdate);
            _run.Replay(fromUpdate);
            _running = true;
            Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.FromMilliseconds(500));
            _waitingSince = DateTime.UtcNow;
            var every = _s.WaitingReportEvery ?? TimeSpan.FromSeconds(10);
            Timers.StartPeriodicTimer("waiting", WaitingTick.Instance, every, every);
            _log.Info("learner: {0} SCST at update {1}/{2} (policy v{1}), {3} images per update", _run.Async ? "async" : "sync", _run.Update, _run.Total,
                _s.Config.Run.BatchSizeTrain * _s.Config.Run.AccumGradIters);
            Next();
        }
        catch (Exception e)
        {
            _log.Error(e, "learner cannot start: {0}", e.Message);
            _s.Done.TrySetException(e);
            Context.Stop(Self);
        }
    }

    void OnRegister(RegisterWorker r)
    {
        var rollout = r.Kind == RegisterWorker.Rollout;
        if (!Scheduler.IsWorker(Sender) && _run.Refusal(r) is { } refusal)
        {
            // Said once per worker; it stops registering when told.
            if (_refused.Add(Sender)) _log.Warning("learner: refused {0} worker {1} on {2}: {3}", r.Kind, Sender.Path, r.Node, refusal);
            Sender.Tell(new WorkerRefused(refusal));
            return;
        }
        if (!(rollout ? Scheduler.AddRolloutWorker(Sender) : r.Kind == RegisterWorker.Reward && Scheduler.AddRewardWorker(Sender))) return;
        _run.Stats.NodeSeen(r.Node);
        Context.Watch(Sender);
        var weights = _run.Weights;
        var local = rollout && weights.Join(Sender);
        if (rollout && !local && weights.PublishedVersion != _run.WeightsVersion) weights.Publish(_run.WeightsVersion);
        Sender.Tell(new WorkerWelcome(weights.Publisher, _run.Update));
        if (local) weights.ShareLocally(_run.WeightsVersion, Sender);
        _log.Info("learner: {0} worker {1} joined ({2} rollout, {3} reward workers)", r.Kind, Sender.Path, Scheduler.RolloutWorkers.Count, Scheduler.RewardWorkers.Count);
        if (_finished) { Sender.Tell(new TrainingFinished(_run.Update, _stopped)); return; }
        Pump();
    }

    void RemoveWorker(IActorRef w, string why)
    {
        if (!Scheduler.IsWorker(w)) return;
        _run.Weights.Leave(w);
        _log.Warning("learner: worker {0} left ({1}); its work goes to the others", w.Path, why);
        Scheduler.RemoveWorker(w, DateTime.UtcNow);
        Pump();
    }

    void OnRollout(RolloutResult r)
    {
        if (Scheduler.OnRollout(r, _run.Update, DateTime.UtcNow) is not { } work) return; // answered twice, or re-dispatched
        ScstMetrics.RolloutLatency.Record(work.RolloutLatencyS);
        _run.Stats.RolloutFrom(r.Node, r.Device);
        Pump();
    }

    void OnTick()
    {
        ReportQueues();
        ReportProgress();
        if (!_running || _finished) return;
        Scheduler.ResendOverdue(DateTime.UtcNow);
        Pump();
    }

    /// <summary>Sync dispatches at the version the model holds (one ahead of the journal while an update's write is in flight).</summary>
    void Pump()
    {
        if (_running && !_finished) Scheduler.Pump(_run.Async ? _run.Update : _run.WeightsVersion, DateTime.UtcNow);
    }

    void Next()
    {
        if (_run.Done) { Finish(); return; }
        _run.PlanSyncUpdate();
        Pump();
    }

    void TryUpdate()
    {
        if (_finished) return;
        if (_run.TryApply() is not { } applied)
        {
            if (_run.Async) Pump();
            return;
        }
        var persistStarted = Stopwatch.GetTimestamp();
        Persist(applied.JournalEvent, _ =>
        {
            var lag = Stopwatch.GetElapsedTime(persistStarted).TotalSeconds;
            ScstMetrics.PersistenceLag.Record(lag);
            var nodes = Akka.Cluster.Cluster.Get(Context.System).State.Members.Count(m => m.Status == MemberStatus.Up && !m.HasRole(StatusRole));
            try
            {
                _run.Journaled(applied, applied.Event, lag, nodes);
                ReportQueues();
                Next();
            }
            catch (Exception x)
            {
                // A checkpoint or metrics write failed (a full disk): the update is journaled and the last checkpoint
                // intact, so a restart replays it. Restarting here would only fail again; the host reports it and exits.
                _log.Error(x, "learner: stopping after update {0}: {1}", _run.Update, x.Message);
                _running = false;
                _s.Done.TrySetException(x);
                Context.Stop(Self);
            }
        });
        // Sync: the next update's rollouts go out now, while the journal write is in flight; each worker starts as soon as
        // it holds the new weights. Persist holds every later message until the write returns, so no rollout of the next
        // update is taken, and nothing of it applied, before this update is journaled.
        if (!_run.Async)
        {
            _run.PlanSyncUpdate();
            Pump();
        }
    }

    /// <param name="stopped">On request before the end: the checkpoint and summary.json say where it stopped, workers are told, nothing in flight is kept.</param>
    void Finish(bool stopped = false)
    {
        if (_finished) return;
        ReportProgress();
        _finished = true;
        _stopped = stopped;
        _running = false;
        var summary = _run.Finish();
        _log.Info("learner: {0} at update {1}; {2} samples, {3} stale rollouts dropped, {4} nodes seen", stopped ? "stopped on request" : "finished",
            _run.Update, _run.Journal.Samples, Scheduler.DroppedStale, _run.Stats.NodesSeen);
        foreach (var w in Scheduler.RolloutWorkers.Concat(Scheduler.RewardWorkers)) w.Tell(new TrainingFinished(_run.Update, stopped));
        // run.max_nonfinite skipped updates in a row: the checkpoint and summary are written, the host exits with the error.
        if (_run.NonfiniteStop is { } stop) _s.Done.TrySetException(stop);
        else _s.Done.TrySetResult(summary);
    }

    // What the learner tells people: the console's progress, a missing worker, the status command, queue gauges

    /// <summary>The update count to the console, once per change (a finished phase reported again would read as a new one).</summary>
    void ReportProgress()
    {
        if (_s.Progress is null || _run is null || !_running || _run.Update == _progressReported) return;
        _progressReported = _run.Update;
        _s.Progress(new TrainingProgress("scst", _run.Update, _run.Total, new Dictionary<string, double>()));
    }

    /// <summary>A learner without workers says so, and how to start one, instead of falling silent.</summary>
    void OnWaitingTick()
    {
        if (!_running || _finished) return;
        var missing = Scheduler.RolloutWorkers.Count == 0 ? RegisterWorker.Rollout : !Scheduler.CanScore ? RegisterWorker.Reward : null;
        if (missing is null) { _waitingSince = DateTime.UtcNow; return; }
        _log.Info("{0}", WaitingMessage(missing, _run.Update, _run.Total, DateTime.UtcNow - _waitingSince,
            missing == RegisterWorker.Rollout ? _s.RolloutCommand : null, Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString()));
    }

    public static string WaitingMessage(string kind, long update, long total, TimeSpan waited, string? command, string learnerAddress) =>
        $"learner: waiting for a {kind} worker at update {update}/{total} ({waited.TotalSeconds:F0} s so far); " +
        (command is not null ? $"start one with: {command}" : $"start a node with --role {kind} --seed-nodes {learnerAddress} (train --config: the learner's config)");

    void ReportQueues() => ScstMetrics.SetQueueDepths(Scheduler.Queued, Scheduler.AtRolloutWorkers, Scheduler.Ready);

    LearnerStatus CurrentStatus() => new(_run.Update, _run.Update, _run.Total, _s.Config.Scst.Mode.Name(), _running, _finished, _run.Journal.Samples,
        Scheduler.DroppedStale, Scheduler.RolloutWorkers.Count, Scheduler.RewardWorkers.Count, Scheduler.Queued, Scheduler.InFlight,
        _run.Cursor.Epoch, _run.Cursor.Position, Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString());
}
