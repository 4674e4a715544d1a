using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Persistence;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.PublishSubscribe;
using Scst.Actors.Weights;
using Scst.Training;
using Scst.Training.Configuration;
using Scst.Training.Telemetry;

namespace Scst.Actors.Pipeline;

/// <summary>
/// The SCST learner of one run, a persistent sharded entity (entity id = run id, <see cref="LearnerRegion"/>), the
/// distributed driver of the training core: it hands the data cursor's micro-batches to rollout workers
/// (<see cref="RolloutScheduler{TWorker}"/>), their captions to reward workers, and applies each update with the
/// core's <see cref="ScstUpdate"/>. Its journal starts with <see cref="RunSubmitted"/> (run directory and config text),
/// so any learner node can rebuild the run; each applied update is one event naming the batches it consumed, so
/// consumption and update are atomic. A restart (or another learner node inheriting the entity through
/// remember-entities) loads the last checkpoint and replays the journaled updates after it, which in sync mode
/// reproduces the uninterrupted run's weights exactly. An ended run journals <see cref="RunEnded"/> and passivates,
/// so it is not restarted; a stopped one continues when submitted again.
/// This actor receives, persists and tells; the steps between messages are <see cref="LearnerRun"/>'s.
/// </summary>
public sealed class LearnerActor : ReceivePersistentActor, IWithTimers
{
    /// <summary>The persistence id of the learner before runs (one singleton per cluster); journals under it are not continued.</summary>
    public const string PersistenceIdValue = "scst-learner";
    public const string Dispatcher = "scst.learner-dispatcher";
    /// <summary>Cluster role of the `status` command's short-lived member; it never registers as a worker.</summary>
    public const string StatusRole = "status";

    public static string PersistenceIdOf(string runId) => $"{PersistenceIdValue}-{runId}";

    sealed record Tick { public static readonly Tick Instance = new(); }
    sealed record WaitingTick { public static readonly WaitingTick Instance = new(); }
    sealed record Announce { public static readonly Announce Instance = new(); }

    readonly string _runId;
    readonly LearnerNode _node;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly List<object> _recoveredSteps = [];
    readonly HashSet<IActorRef> _watchers = [];
    RunSpec? _spec;
    RunEnded? _ended;       // journaled end, with no update after it
    LearnerSettings _s = null!;
    LearnerRun _run = null!;
    bool _running, _finished, _stopped;
    DateTime _waitingSince;
    long _progressReported = -1;
    readonly HashSet<IActorRef> _refused = [];

    public ITimerScheduler Timers { get; set; } = null!;
    public override string PersistenceId { get; }

    public static Props Props(string runId, LearnerNode node) => Akka.Actor.Props.Create(() => new LearnerActor(runId, node)).WithDispatcher(Dispatcher);

    RolloutScheduler<IActorRef> Scheduler => _run.Scheduler;
    string NodeAddress => Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();

    public LearnerActor(string runId, LearnerNode node)
    {
        (_runId, _node) = (runId, node);
        PersistenceId = PersistenceIdOf(runId);

        Recover<RunSubmitted>(e => _spec = e.Spec);
        // Kept until recovery completes: an ended run needs no model, and a live one is built once, then replays them.
        Recover<LearnerStepApplied>(e => { _recoveredSteps.Add(e); _ended = null; });
        Recover<LearnerStepSkipped>(e => { _recoveredSteps.Add(e); _ended = null; });
        Recover<RunEnded>(e => _ended = e);
        Recover<RecoveryCompleted>(_ => OnRecovered());

        Command<StartRun>(OnStartRun);
        Command<WatchRun>(_ => Watch(Sender));
        Command<GetRunSpec>(_ => { if (_spec is not null) Sender.Tell(new RunSubmitted(_spec)); });
        Command<RegisterWorker>(r =>
        {
            if (_run is not null) OnRegister(r);
            else if (_ended is not null) Sender.Tell(new TrainingFinished(_ended.Updates, !_ended.Completed));
        });
        Command<RolloutResult>(r => { if (_run is not null) OnRollout(r); });
        Command<ScoreResult>(s => { if (_run is not null && Scheduler.OnScore(s, DateTime.UtcNow)) TryUpdate(); });
        Command<Terminated>(t => { if (_run is not null) RemoveWorker(t.ActorRef, "terminated"); });
        Command<Tick>(_ => OnTick());
        Command<WaitingTick>(_ => OnWaitingTick());
        Command<Announce>(_ => OnAnnounce());
        Command<WeightsAvailable>(_ => { });
        Command<GetLearnerStatus>(_ => Sender.Tell(CurrentStatus()));
        // Persist stashes commands until its handler has run, so a stop never lands between an update and its journal write.
        Command<StopLearner>(_ => { if (_run is not null && !_finished) Finish(stopped: true); });
        // A `status` client joins as a member for a moment; it is not a node of the run.
        Command<ClusterEvent.MemberUp>(m => { if (_run is not null && !IsClient(m.Member)) _run.Stats.NodeSeen(m.Member.Address.ToString()); });
        Command<ClusterEvent.IMemberEvent>(_ => { });
        Command<ReceiveTimeout>(_ => { if (_run is null) Passivate(); });
        Command<Status.Failure>(f => _log.Error(f.Cause, "learner {0}: a child failed", _runId));
    }

    static bool IsClient(Member m) => RunIds.ClientRoles.Any(m.HasRole);

    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        _run?.Core.Dispose();
        _s?.Released?.Invoke();
        base.PostStop();
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        Tell(RunEnded.FromError(_runId, $"the learner journal could not record update {_run?.Update}: {cause.Message}", userError: true, NodeAddress));
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        Tell(RunEnded.FromError(_runId, $"the learner journal cannot be read back: {reason.Message}", userError: true, NodeAddress));
        base.OnRecoveryFailure(reason, message);
    }

    /// <summary>A run that is journaled and not ended starts at once (a restart, or a node inheriting it); otherwise it waits for <see cref="StartRun"/>.</summary>
    void OnRecovered()
    {
        if (_spec is not null && _ended is null) Build(null);
        // Nothing to do until someone asks: an entity started only to answer (an ended run, a stale message) goes away.
        else SetReceiveTimeout(TimeSpan.FromSeconds(30));
    }

    void OnStartRun(StartRun m)
    {
        var spec = m.Spec;
        if ((spec.RunId == _runId ? RunIds.Problem(spec.RunId) : $"run id '{spec.RunId}' sent to the entity of run '{_runId}'") is { } bad)
        {
            Sender.Tell(new RunRefused(spec.RunId, bad));
            return;
        }
        if (_spec is not null)
        {
            if (Path.GetFullPath(_spec.RunDir) != Path.GetFullPath(spec.RunDir))
            {
                Sender.Tell(new RunRefused(_runId, $"run id '{_runId}' belongs to the run in {_spec.RunDir}; give this run another --run-id"));
                return;
            }
            if (_spec.ConfigSha256 != spec.ConfigSha256)
            {
                Sender.Tell(new RunRefused(_runId, $"run '{_runId}' was started with another config ({_spec.ConfigPath}, sha256 {_spec.ConfigSha256[..12]}); " +
                                                   "a run keeps its config: start a new run (--run-dir / --run-id) to change it"));
                return;
            }
        }
        if (_run is not null)
        {
            if (m.StopAfterUpdates > 0) _run.StopAfterUpdates = m.StopAfterUpdates;
            Watch(Sender);
            return;
        }
        // Completed runs answer; one stopped early (--stop-after, a signal, non-finite updates) continues.
        if (_ended is { Completed: true })
        {
            Sender.Tell(_ended);
            return;
        }
        SetReceiveTimeout(null);
        _ended = null;
        var watcher = Sender;
        if (_spec is null) Persist(new RunSubmitted(spec), e => { _spec = e.Spec; Build(m, watcher); });
        else Build(m, watcher);
    }

    void Watch(IActorRef watcher)
    {
        if (_ended is not null && _run is null) { watcher.Tell(_ended); return; }
        if (_run is null) return; // not started yet: the watcher asks again
        _watchers.Add(watcher);
        watcher.Tell(new RunAccepted(_runId, _run.Update, _run.Total, _s.Config.Scst.Mode.Name(), NodeAddress));
    }

    /// <summary>The run from its spec: settings (config, metrics), the training core, the weight server; then the journaled updates, then work.</summary>
    void Build(StartRun? start, IActorRef? watcher = null)
    {
        // Start tells every watcher the run is accepted; a failure tells them why it ended.
        if (watcher is not null) _watchers.Add(watcher);
        try
        {
            _s = _node.SettingsFor(_spec!);
            Directory.CreateDirectory(_s.RunDir);
            var core = Learner.Create(_s.Config, _s.RunDir, _s.Metrics, _s.Log);
            core.Evaluator.Progress = _s.Progress;
            WeightServer weightServer;
            try { weightServer = WeightServer.Start(_s.WeightPlane); }
            catch { core.Dispose(); throw; }
            var weights = new WeightSharing(core, Context.ActorOf(WeightPublisher.Props(weightServer), "weights"), _s.RunDir, _s.KeepVersions, _s.WeightsInAmpDType);
            var localReward = _s.LocalReward is null ? null : Context.ActorOf(RewardPool.Props(_s.LocalReward, _s.RewardPoolSize, null), "reward");
            _run = new LearnerRun(_s, core, weights, localReward, (worker, message) => worker.Tell(message), warning => _log.Warning("{0}", warning));
            if (start is { StopAfterUpdates: > 0 }) _run.StopAfterUpdates = start.StopAfterUpdates;
            foreach (var e in _recoveredSteps)
                if (e is LearnerStepApplied a) _run.ApplyEvent(a, recovering: true);
                else _run.ApplyEvent((LearnerStepSkipped)e, recovering: true);
            _recoveredSteps.Clear();
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp));
            Start();
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    /// <summary>After recovery: the last checkpoint, the journaled updates after it replayed, then work.</summary>
    void Start()
    {
        var fromUpdate = _run.RestoreCheckpoint();
        if (_run.Update > 0)
            _log.Info("learner: journal at update {0}, checkpoint at update {1}; replaying {2} updates", _run.Update, fromUpdate, _run.Update - fromUpdate);
        _run.Replay(fromUpdate);
        _running = true;
        Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.FromMilliseconds(500));
        Timers.StartPeriodicTimer("announce", Announce.Instance, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        _waitingSince = DateTime.UtcNow;
        var every = _s.WaitingReportEvery ?? TimeSpan.FromSeconds(10);
        Timers.StartPeriodicTimer("waiting", WaitingTick.Instance, every, every);
        _log.Info("learner: run {0}: {1} SCST at update {2}/{3} (policy v{2}), {4} images per update", _runId, _run.Async ? "async" : "sync", _run.Update, _run.Total,
            _s.Config.Run.BatchSizeTrain * _s.Config.Run.AccumGradIters);
        foreach (var w in _watchers) w.Tell(new RunAccepted(_runId, _run.Update, _run.Total, _s.Config.Scst.Mode.Name(), NodeAddress));
        Next();
    }

    /// <summary>The run cannot go on (a bad config, a corrupt checkpoint, a full disk): its watchers hear why, and the entity goes (a new submission tries again).</summary>
    void Fail(Exception e)
    {
        var user = _node.DescribeUserError(e);
        if (user is null) _log.Error(e, "learner: run {0} failed: {1}", _runId, e.Message);
        else _log.Error("learner: run {0}: {1}", _runId, user);
        var message = user ?? $"unexpected {e.GetType().Name} in run {_runId}: {e.Message}" + (_node.TraceFile is null ? "" : $" (full trace in {_node.TraceFile})");
        _running = false;
        _finished = true;
        Tell(RunEnded.FromError(_runId, message, user is not null, NodeAddress));
        try { _s?.Ended?.Invoke(null); } catch (Exception x) { _log.Warning("learner: run {0}: {1}", _runId, x.Message); }
        Passivate();
    }

    void Tell(RunEnded ended)
    {
        foreach (var w in _watchers) w.Tell(ended);
    }

    /// <summary>Gone for good (remember-entities forgets a passivated entity): the run ended, failed, or nothing asked for it.</summary>
    void Passivate()
    {
        Timers.CancelAll();
        Context.Parent.Tell(new Passivate(PoisonPill.Instance));
    }

    void OnAnnounce()
    {
        if (_running && !_finished)
            DistributedPubSub.Get(Context.System).Mediator.Tell(new Publish(RunIds.Topic, new RunAnnounced(_runId, _s.Config.Scst.Mode.Name(), NodeAddress)));
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
        _log.Info("learner: run {0}: {1} worker {2} joined ({3} rollout, {4} reward workers)", _runId, r.Kind, Sender.Path, Scheduler.RolloutWorkers.Count, Scheduler.RewardWorkers.Count);
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
            var nodes = Akka.Cluster.Cluster.Get(Context.System).State.Members.Count(m => m.Status == MemberStatus.Up && !IsClient(m));
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
                Fail(x);
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
        TrainSummary summary;
        try { summary = _run.Finish(); }
        catch (Exception e) { Fail(e); return; }
        _log.Info("learner: run {0} {1} at update {2}; {3} samples, {4} stale rollouts dropped, {5} nodes seen", _runId, stopped ? "stopped on request" : "finished",
            _run.Update, _run.Journal.Samples, Scheduler.DroppedStale, _run.Stats.NodesSeen);
        foreach (var w in Scheduler.RolloutWorkers.Concat(Scheduler.RewardWorkers)) w.Tell(new TrainingFinished(_run.Update, stopped));
        // run.max_nonfinite skipped updates in a row: the checkpoint and summary are written; the submitter exits with the error.
        var ended = RunEnded.From(_runId, summary, stopped || _run.NonfiniteStop is not null, NodeAddress);
        if (_run.NonfiniteStop is { } stop) ended = ended with { Error = stop.Message, UserError = true };
        try { _s.Ended?.Invoke(summary); } catch (Exception x) { _log.Warning("learner: run {0}: {1}", _runId, x.Message); }
        // Journaled, so neither a restart nor a node inheriting the entity runs it again; watchers hear once it is.
        Persist(ended, e =>
        {
            _ended = e;
            Tell(e);
            Passivate();
        });
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

    LearnerStatus CurrentStatus() => _run is null
        ? new(_ended?.Updates ?? 0, _ended?.Updates ?? 0, 0, "", false, _ended is not null, _ended?.SamplesConsumed ?? 0, 0, 0, 0, 0, 0, 0, 0, NodeAddress, _runId)
        : new(_run.Update, _run.Update, _run.Total, _s.Config.Scst.Mode.Name(), _running, _finished, _run.Journal.Samples,
            Scheduler.DroppedStale, Scheduler.RolloutWorkers.Count, Scheduler.RewardWorkers.Count, Scheduler.Queued, Scheduler.InFlight,
            _run.Cursor.Epoch, _run.Cursor.Position, NodeAddress, _runId);
}
