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

/// <param name="RunDir">Checkpoints, weights/ (published versions), summary.json.</param>
/// <param name="RewardPoolSize">The pool size, chunk size, versions kept, publish interval, timeout and in-flight count
/// have their defaults in Scst.Host.Cluster.ScstClusterOptions (scst.* keys, docs/cluster.md).</param>
/// <param name="PublishEvery">Async mode: publish weights every N updates (sync always publishes every update).</param>
/// <param name="RequestTimeout">A rollout or score request unanswered this long goes to another worker.</param>
/// <param name="InFlightPerWorker">Async mode: requests queued per rollout worker, so it never waits for the learner.</param>
/// <param name="RolloutCommand">The command line that starts a rollout node for this learner, logged while it has none.</param>
/// <param name="Progress">Called (on the learner's thread) as updates and evaluations advance, for the console.</param>
public sealed record LearnerSettings(
    ScstConfig Config,
    string RunDir,
    IMetricsSink Metrics,
    ILogger Log,
    TaskCompletionSource<TrainSummary?> Done,
    int RewardPoolSize,
    int ChunkSize,
    int KeepVersions,
    int PublishEvery,
    TimeSpan RequestTimeout,
    int InFlightPerWorker,
    RewardContext? LocalReward = null,
    int? StopAfterUpdates = null,
    string? RolloutCommand = null,
    TimeSpan? WaitingReportEvery = null,
    Action<TrainingProgress>? Progress = null)
{
    public TimeSpan Timeout => RequestTimeout;
}

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

    sealed record StepRecord(long Update, int Epoch, int[][] Batches);

    /// <summary>
    /// One micro-batch of training data on its way through rollout and reward, or in sync mode one part of it
    /// (<c>scst.rollout_splits</c>: the parts of micro-batch <see cref="Micro"/> go to different rollout workers).
    /// </summary>
    sealed class Work(int[] ids, int epoch, long seed, int micro = 0)
    {
        public int[] Ids { get; } = ids;
        public int Micro { get; } = micro;
        public int Epoch { get; } = epoch;
        public long Seed { get; set; } = seed;
        public long RequestId { get; set; }
        public IActorRef? Worker { get; set; }
        public DateTime SentAt { get; set; }
        public double RolloutLatencyS { get; set; }
        public RolloutResult? Rollout { get; set; }
        public IActorRef? Scorer { get; set; }
        public ScoreResult? Score { get; set; }
    }

    sealed record Tick { public static readonly Tick Instance = new(); }
    sealed record WaitingTick { public static readonly WaitingTick Instance = new(); }

    readonly LearnerSettings _s;
    readonly ScstConfig _config;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly bool _async;
    Learner _core = null!;
    IActorRef _publisher = null!;
    IActorRef? _localReward;

    // Journaled state
    long _update;
    DataCursor _cursor = null!;
    readonly List<(int Epoch, int[] Ids)> _carriedPending = [];
    readonly Dictionary<long, StepRecord> _steps = [];
    readonly SortedDictionary<int, HashSet<int>> _consumed = [];
    long _duplicates, _samples, _droppedStale;

    // Running state
    bool _running, _finished;
    readonly List<IActorRef> _rollouts = [];
    readonly HashSet<IActorRef> _localRollouts = []; // rollout workers in this process: weights in memory, no files
    long _weightsVersion, _publishedVersion = -1;   // version the model holds now; newest version written as a file
    readonly List<IActorRef> _rewards = [];
    readonly Dictionary<IActorRef, int> _inFlight = [];
    readonly Dictionary<IActorRef, string> _workerNode = [];
    readonly Dictionary<long, Work> _byRequest = [];
    readonly Queue<Work> _toDispatch = new();
    readonly List<Work> _current = []; // sync: this update's micro-batches, in order
    readonly List<Work> _ready = [];   // async: scored rollouts waiting for an update
    readonly Dictionary<string, long> _rolloutsByNode = [];
    readonly HashSet<string> _nodesSeen = [];
    readonly List<int> _staleness = [];
    readonly SortedDictionary<long, long> _stalenessHistogram = []; // rollouts used, by versions behind (this process's updates only)
    long _nextRequestId = 1, _dispatchSerial;
    int _rewardRr;
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
        Command<ClusterEvent.MemberUp>(m => { if (!m.Member.HasRole(StatusRole)) _nodesSeen.Add(m.Member.Address.ToString()); });
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
        _publisher = Context.ActorOf(WeightPublisher.Props(_s.ChunkSize, _s.KeepVersions), "weights");
        if (_s.LocalReward is not null) _localReward = Context.ActorOf(RewardPool.Props(_s.LocalReward, _s.RewardPoolSize, null), "reward");
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
        var batches = new int[e.BatchSizes.Length][];
        var offset = 0;
        for (var m = 0; m < batches.Length; m++)
        {
            batches[m] = e.ImageIds.AsSpan(offset, e.BatchSizes[m]).ToArray();
            offset += e.BatchSizes[m];
            var seen = _consumed.TryGetValue(e.BatchEpochs[m], out var set) ? set : _consumed[e.BatchEpochs[m]] = [];
            foreach (var id in batches[m])
                if (!seen.Add(id)) _duplicates++;
            _samples += batches[m].Length;
        }
        _steps[e.Update] = new StepRecord(e.Update, e.CursorEpoch, batches);
        _update = e.Update + 1;
        // Live, the cursor already stands where the event says; rebuilding it would only reshuffle the epoch again.
        if (IsRecovering) _cursor = _core.NewCursor(e.CursorEpoch, e.CursorPosition);
        _droppedStale = e.RolloutsDroppedStale;
        _carriedPending.Clear();
        offset = 0;
        for (var i = 0; i < e.PendingSizes.Length; i++)
        {
            _carriedPending.Add((e.PendingEpochs[i], e.PendingIds.AsSpan(offset, e.PendingSizes[i]).ToArray()));
            offset += e.PendingSizes[i];
        }
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
                for (var u = fromUpdate; u < _update; u++) Replay(_steps[u]);
            }
            foreach (var (epoch, ids) in _carriedPending) _toDispatch.Enqueue(new Work(ids, epoch, NextSeed()));
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
        var list = r.Kind == RegisterWorker.Rollout ? _rollouts : r.Kind == RegisterWorker.Reward ? _rewards : null;
        if (list is null || list.Contains(Sender)) return;
        list.Add(Sender);
        _inFlight[Sender] = 0;
        _workerNode[Sender] = r.Node;
        _nodesSeen.Add(r.Node);
        Context.Watch(Sender);
        var local = r.Kind == RegisterWorker.Rollout && Sender.Path.Address.HasLocalScope;
        if (local) _localRollouts.Add(Sender);
        else if (r.Kind == RegisterWorker.Rollout && _publishedVersion != _weightsVersion) Publish(_weightsVersion);
        Sender.Tell(new WorkerWelcome(_publisher, _update));
        if (local) ShareLocally([Sender]);
        _log.Info("learner: {0} worker {1} joined ({2} rollout, {3} reward workers)", r.Kind, Sender.Path, _rollouts.Count, _rewards.Count);
        if (_finished) { Sender.Tell(new TrainingFinished(_update)); return; }
        Pump();
    }

    void RemoveWorker(IActorRef w, string why)
    {
        if (!_rollouts.Remove(w) && !_rewards.Remove(w)) return;
        _inFlight.Remove(w);
        _localRollouts.Remove(w);
        _log.Warning("learner: worker {0} left ({1}); its work goes to the others", w.Path, why);
        foreach (var work in _byRequest.Values.Where(x => Equals(x.Worker, w) && x.Rollout is null).ToList()) Redispatch(work);
        foreach (var work in _byRequest.Values.Where(x => Equals(x.Scorer, w) && x.Score is null).ToList()) SendToReward(work);
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
        var missing = _rollouts.Count == 0 ? RegisterWorker.Rollout : _rewards.Count == 0 && _localReward is null ? RegisterWorker.Reward : null;
        if (missing is null) { _waitingSince = DateTime.UtcNow; return; }
        _log.Info("{0}", WaitingMessage(missing, _update, Total, DateTime.UtcNow - _waitingSince,
            missing == RegisterWorker.Rollout ? _s.RolloutCommand : null, Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString()));
    }

    public static string WaitingMessage(string kind, long update, long total, TimeSpan waited, string? command, string learnerAddress) =>
        $"learner: waiting for a {kind} worker at update {update}/{total} ({waited.TotalSeconds:F0} s so far); " +
        (command is not null ? $"start one with: {command}" : $"start a node with --role {kind} --seed-nodes {learnerAddress} (train --config: the learner's config)");

    void ReportQueues() => ScstMetrics.SetQueueDepths(_toDispatch.Count, _byRequest.Values.Count(w => w.Rollout is null), _ready.Count);

    LearnerStatus CurrentStatus() => new(_update, _update, _core is null ? 0 : Total, _config.Scst.Mode.Name(), _running, _finished, _samples, _droppedStale,
        _rollouts.Count, _rewards.Count, _toDispatch.Count, _byRequest.Count, _cursor?.Epoch ?? 0, _cursor?.Position ?? 0,
        Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString());

    void OnTick()
    {
        ReportQueues();
        ReportProgress();
        if (!_running || _finished) return;
        var now = DateTime.UtcNow;
        foreach (var work in _byRequest.Values.ToList())
        {
            if (now - work.SentAt < _s.Timeout) continue;
            // With no other rollout worker, "elsewhere" is the same busy worker: a queued duplicate, not a rescue (a
            // BLIP-2 FlanT5-XL rollout on a CPU takes minutes). A worker that is gone is handled when it leaves.
            if (work.Rollout is null && !_rollouts.Any(r => !Equals(r, work.Worker))) continue;
            _log.Warning("learner: request {0} unanswered for {1}; sending it elsewhere", work.RequestId, _s.Timeout);
            if (work.Rollout is null) Redispatch(work);
            else if (work.Score is null) SendToReward(work);
        }
        Pump();
    }

    void Redispatch(Work work)
    {
        _byRequest.Remove(work.RequestId);
        if (work.Worker is not null && _inFlight.ContainsKey(work.Worker)) _inFlight[work.Worker]--;
        work.Worker = null;
        work.Rollout = null;
        work.Score = null;
        _toDispatch.Enqueue(work);
    }

    long NextSeed() => (long)RolloutGenerator.SamplingSeed(_config.Run.Seed, 1_000_000_000L + _dispatchSerial++, 0);

    /// <summary>Hands queued micro-batches to the least-loaded rollout workers (async: tops the pipeline up first).</summary>
    void Pump()
    {
        if (!_running || _finished) return;
        if (_async)
        {
            var window = _rollouts.Count * _s.InFlightPerWorker;
            var outstanding = _byRequest.Count + _toDispatch.Count;
            while (outstanding < window && _core.Plan.MicroBatchesBefore(_update) + _ready.Count + outstanding < _core.Plan.TotalMicroBatches)
            {
                var ids = _cursor.Next(BatchSize);
                _toDispatch.Enqueue(new Work(ids, _cursor.Epoch, NextSeed()));
                outstanding++;
            }
        }
        while (_toDispatch.Count > 0)
        {
            var worker = _rollouts.Where(w => _inFlight[w] < (_async ? _s.InFlightPerWorker : int.MaxValue)).MinBy(w => _inFlight[w]);
            if (worker is null) return;
            var work = _toDispatch.Dequeue();
            work.RequestId = _nextRequestId++;
            work.Worker = worker;
            work.SentAt = DateTime.UtcNow;
            _inFlight[worker]++;
            _byRequest[work.RequestId] = work;
            var minVersion = _async ? Math.Max(0, _update - _config.Scst.MaxStaleness) : _update;
            worker.Tell(new RolloutRequest(work.RequestId, [.. work.Ids], minVersion, !_async, work.Seed));
        }
    }

    void OnRollout(RolloutResult r)
    {
        if (!_byRequest.TryGetValue(r.RequestId, out var work) || work.Rollout is not null) return; // answered twice, or re-dispatched
        if (work.Worker is not null && _inFlight.ContainsKey(work.Worker)) _inFlight[work.Worker]--;
        work.RolloutLatencyS = (DateTime.UtcNow - work.SentAt).TotalSeconds;
        ScstMetrics.RolloutLatency.Record(work.RolloutLatencyS);
        _rolloutsByNode[r.Node] = _rolloutsByNode.GetValueOrDefault(r.Node) + 1;
        _nodesSeen.Add(r.Node);
        if (!_async && r.PolicyVersion != _update)
        {
            _log.Warning("learner: rollout {0} came from v{1}, not v{2}; sending it again", r.RequestId, r.PolicyVersion, _update);
            Redispatch(work);
        }
        else if (_async && _update - r.PolicyVersion > _config.Scst.MaxStaleness)
            DropStale(work);
        else
        {
            work.Rollout = r;
            SendToReward(work);
        }
        Pump();
    }

    void DropStale(Work work)
    {
        _droppedStale++;
        work.Seed = NextSeed();
        Redispatch(work);
    }

    void SendToReward(Work work)
    {
        var pool = _rewards.Count > 0 ? _rewards[_rewardRr++ % _rewards.Count] : _localReward;
        if (pool is null) { _log.Warning("learner: no reward worker yet"); return; } // the tick retries
        var r = work.Rollout!;
        work.Scorer = pool;
        work.SentAt = DateTime.UtcNow;
        pool.Tell(new ScoreRequest(work.RequestId, r.ImageIds, r.K, r.Captions, r.GreedyCaptions));
    }

    void OnScore(ScoreResult s)
    {
        if (!_byRequest.TryGetValue(s.RequestId, out var work) || work.Rollout is null || work.Score is not null) return;
        work.Score = s;
        _byRequest.Remove(s.RequestId);
        if (_async) _ready.Add(work);
        TryUpdate();
    }

    // ------------------------------------------------------------------------------------------------------
    // Updates

    void Next()
    {
        if (_update >= Total || _stopEarly || (_s.StopAfterUpdates is int stop && _update >= stop)) { Finish(); return; }
        if (!_async && _current.Count == 0)
        {
            for (var m = 0; m < _core.Plan.MicroBatches(_update); m++)
            {
                var ids = _cursor.Next(BatchSize);
                var seed = RolloutGenerator.SamplingSeed(_config.Run.Seed, _update, m);
                foreach (var (partIds, partSeed) in RolloutGenerator.Parts(ids, seed, _config.Scst.RolloutSplits))
                {
                    var w = new Work(partIds, _cursor.Epoch, unchecked((long)partSeed), m);
                    _current.Add(w);
                    _toDispatch.Enqueue(w);
                }
            }
        }
        Pump();
    }

    void TryUpdate()
    {
        if (_finished) return;
        List<Work> used;
        if (!_async)
        {
            if (_current.Count == 0 || _current.Any(w => w.Score is null)) return;
            used = [.. _current];
        }
        else
        {
            // Versions may have moved on while these were scored: re-check staleness at use.
            foreach (var w in _ready.Where(w => _update - w.Rollout!.PolicyVersion > _config.Scst.MaxStaleness).ToList())
            {
                _ready.Remove(w);
                DropStale(w);
            }
            var need = _core.Plan.MicroBatches(_update);
            if (_ready.Count < need) { Pump(); return; }
            used = _ready.Take(need).ToList();
            _ready.RemoveRange(0, need);
        }

        _staleness.Clear();
        var micros = _async ? used.Select(w => new[] { w }).ToList() : used.GroupBy(w => w.Micro).Select(g => g.ToArray()).ToList();
        var scored = new List<ScoredRollout>(micros.Count);
        foreach (var parts in micros)
        {
            var rollout = RolloutBatch.Concat([.. parts.Select(w => w.Rollout!.ToBatch())], _core.Policy.Tokenizer.PadId);
            var greedy = parts.Any(w => w.Score!.GreedyRewards.IsDefaultOrEmpty) ? null : parts.SelectMany(w => w.Score!.GreedyRewards).ToArray();
            scored.Add(new ScoredRollout(rollout, [.. parts.SelectMany(w => w.Score!.Rewards)], [.. parts.SelectMany(w => w.Score!.Advantages)], greedy));
            var staleness = _update - rollout.PolicyVersion;
            _staleness.Add((int)staleness);
            ScstMetrics.Staleness.Record(staleness);
            _stalenessHistogram[staleness] = _stalenessHistogram.GetValueOrDefault(staleness) + 1;
        }
        var epoch = _async ? used.Max(w => w.Epoch) : _cursor.Epoch;
        var values = _core.Scst!.Apply(_update, epoch, scored, offPolicy: _async);
        _weightsVersion = _update + 1;
        ShareLocally(_localRollouts);
        values["staleness_mean"] = _staleness.Average();
        values["staleness_max"] = _staleness.Max();
        values["rollout_latency_s"] = used.Average(w => w.RolloutLatencyS);
        values["rollout_workers"] = used.Select(w => w.Worker).Distinct().Count();
        values["rollouts_dropped_stale"] = _droppedStale;

        var pending = _byRequest.Values.Concat(_toDispatch).Concat(_ready).Where(w => !used.Contains(w)).Distinct().ToList();
        // The journal names whole micro-batches (parts joined in order), as replay and the plain trainer see them.
        var ev = new LearnerStepApplied(_update, _update + 1, _cursor.Epoch, _cursor.Position,
            [.. micros.Select(p => p.Sum(w => w.Ids.Length))], [.. micros.Select(p => p[0].Epoch)], [.. micros.SelectMany(p => p.SelectMany(w => w.Ids))],
            [.. pending.Select(w => w.Ids.Length)], [.. pending.Select(w => w.Epoch)], [.. pending.SelectMany(w => w.Ids)], _droppedStale);
        _current.Clear();
        // Sync: announce the new weights before the journal write returns, so replicas fetch them while it is fsynced.
        // Safe because a crash before the write re-derives exactly these weights for this version by replay.
        var publishedEarly = !_async;
        if (publishedEarly && HasRemoteRollouts) Publish(_update + 1);
        var persistStarted = Stopwatch.GetTimestamp();
        Persist(ev, e =>
        {
            var lag = Stopwatch.GetElapsedTime(persistStarted).TotalSeconds;
            ScstMetrics.PersistenceLag.Record(lag);
            var carried = _carriedPending.ToList();
            ApplyEvent(e);
            _carriedPending.Clear(); // live pending work is in the queues; only a restart needs the journaled list
            _steps.Remove(e.Update - Math.Max(1, _config.Run.CheckpointEvery) * 2); // replay never goes further back than the last checkpoint
            values["persist_lag_s"] = lag;
            values["samples_consumed"] = _samples;
            values["pending_rollouts"] = _toDispatch.Count + _byRequest.Count;
            values["nodes"] = Akka.Cluster.Cluster.Get(Context.System).State.Members.Count(m => m.Status == MemberStatus.Up && !m.HasRole(StatusRole));
            AfterUpdate(_update, epoch, values, replay: false);
            ScstMetrics.RecordUpdate(_async ? "scst-async" : "scst", used.Sum(w => w.Ids.Length), _update, values);
            ReportQueues();
            if (!publishedEarly && HasRemoteRollouts && (_update % Math.Max(1, _s.PublishEvery) == 0 || _update >= Total)) Publish(_update);
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
        if (!replay && _rolloutsByNode.Count > 0)
            _s.Metrics.Log("rollout_nodes", update, _rolloutsByNode.ToDictionary(kv => kv.Key, kv => (double)kv.Value));
        (_best, var stop) = _core.AfterUpdate(ProgressAt(update), ExtraState(update));
        _stopEarly |= stop;
    }

    /// <summary>The run's progress as a checkpoint at <paramref name="update"/> records it: the journaled cursor and samples, the best so far.</summary>
    RunProgress ProgressAt(long update) => _best with { Update = update, Samples = _samples, Epoch = _cursor.Epoch, Position = _cursor.Position };

    static JsonObject ExtraState(long update) => new() { ["actor_learner"] = true, ["policy_version"] = update };

    bool HasRemoteRollouts => _rollouts.Any(w => !_localRollouts.Contains(w));

    /// <summary>Hands the current weights to rollout replicas in this process, a copy each (they dispose it).</summary>
    void ShareLocally(IEnumerable<IActorRef> replicas)
    {
        foreach (var r in replicas) r.Tell(new LocalPolicyWeights(_weightsVersion, PolicyWeights.Snapshot(_core.Policy.Model, _core.Setup.Base)));
    }

    /// <summary>Writes the weights as a file for remote replicas; done only while some are registered (or join).</summary>
    void Publish(long version)
    {
        _publishedVersion = version;
        var dir = Path.Combine(_s.RunDir, "weights");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, $"policy-v{version}.safetensors");
        PolicyWeights.Export(_core.Policy.Model, _core.Setup.Base, file);
        _publisher.Tell(new PublishWeights(version, file));
        // The publisher keeps its newest versions open, so older files can go (an open handle outlives the name).
        foreach (var f in Directory.EnumerateFiles(dir, "policy-v*.safetensors"))
            if (long.TryParse(Path.GetFileNameWithoutExtension(f)["policy-v".Length..], out var v) && v <= version - _s.KeepVersions)
                File.Delete(f);
    }

    void Finish()
    {
        if (_finished) return;
        ReportProgress();
        _finished = true;
        _running = false;
        var stopped = _update < Total && !_stopEarly;
        var perEpoch = new JsonObject();
        foreach (var (epoch, ids) in _consumed) perEpoch[epoch.ToString(System.Globalization.CultureInfo.InvariantCulture)] = ids.Count;
        var byNode = new JsonObject();
        foreach (var (node, n) in _rolloutsByNode.OrderBy(kv => kv.Key, StringComparer.Ordinal)) byNode[node] = n;
        var histogram = new JsonObject();
        foreach (var (k, n) in _stalenessHistogram) histogram[k.ToString(System.Globalization.CultureInfo.InvariantCulture)] = n;
        var summary = _core.Finish(ProgressAt(_update), completed: !stopped, ExtraState(_update), new JsonObject
        {
            ["staleness_histogram"] = histogram,
            ["policy_version"] = _update,
            ["samples_consumed_per_epoch"] = perEpoch,
            ["duplicate_samples"] = _duplicates,
            ["train_images"] = _core.Corpus.Train.Count,
            ["nodes_seen"] = _nodesSeen.Count,
            ["rollouts_by_node"] = byNode,
            ["rollouts_dropped_stale"] = _droppedStale,
            ["scst_mode"] = _config.Scst.Mode.Name(),
        });
        _log.Info("learner: finished at update {0}; {1} samples, {2} stale rollouts dropped, {3} nodes seen", _update, _samples, _droppedStale, _nodesSeen.Count);
        foreach (var w in _rollouts.Concat(_rewards)) w.Tell(new TrainingFinished(_update));
        _s.Done.TrySetResult(summary);
    }
}
