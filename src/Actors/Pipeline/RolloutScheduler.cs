using Scst.Actors.Messages;

namespace Scst.Actors.Pipeline;

/// <summary>
/// One micro-batch of training data on its way through rollout and reward, or in sync mode one part of it (the parts
/// of micro-batch <see cref="Micro"/> go to the rollout workers present, each with the micro-batch's seed).
/// </summary>
public sealed class RolloutWork<TWorker>(int[] ids, int epoch, long seed, int micro = 0) where TWorker : class
{
    public int[] Ids { get; } = ids;
    public int Micro { get; } = micro;
    public int Epoch { get; } = epoch;
    public long Seed { get; internal set; } = seed;
    /// <summary>The id of its latest dispatch; a re-dispatch gets a new one, so a late answer to the old one is ignored.</summary>
    public long RequestId { get; internal set; }
    public TWorker? Worker { get; internal set; }
    /// <summary>Sync: the worker this part was cut for; it goes elsewhere only if that worker left or let it time out.</summary>
    public TWorker? Target { get; internal set; }
    /// <summary>When it last went to a rollout worker, or to a reward worker once rolled out.</summary>
    public DateTime SentAt { get; internal set; }
    public double RolloutLatencyS { get; internal set; }
    /// <summary>From the score request to its answer: the reward leg of the critical path.</summary>
    public double ScoreLatencyS { get; internal set; }
    public RolloutResult? Rollout { get; internal set; }
    public TWorker? Scorer { get; internal set; }
    /// <summary>The worker that let it time out: its next dispatch goes elsewhere while another worker can take it.</summary>
    internal TWorker? Avoid { get; set; }
    public ScoreResult? Score { get; internal set; }
}

/// <param name="Async">Async SCST: rollouts from recent policy versions are used (up to <paramref name="MaxStaleness"/> behind); sync: only the current one.</param>
/// <param name="InFlightPerWorker">Async: requests out per rollout worker, so it never waits for the learner.</param>
/// <param name="Timeout">A request unanswered this long goes to another worker.</param>
public sealed record RolloutSchedulerOptions(bool Async, int InFlightPerWorker, int MaxStaleness, TimeSpan Timeout);

/// <summary>
/// Which rollout worker generates which micro-batch, which reward worker scores it, and what happens when answers come
/// late, from the wrong policy version, or never. No actors and no clock: the driver (the learner actor) passes the time
/// and the policy version in and delivers what <c>send</c> is handed; tests drive it with strings as workers.
/// <para>
/// Sync mode: the driver plans each update's micro-batches (<see cref="AddSyncMicroBatch"/>); each is cut into one
/// contiguous part per rollout worker present, sized by the worker's measured throughput (<see cref="RolloutShares"/>),
/// and every part goes to its worker with the micro-batch's seed (sampling is a function of seed, image and sample, so
/// the parts joined in order are the whole micro-batch). The update may run once every part is scored. Async mode: the scheduler keeps every rollout worker's
/// <see cref="RolloutSchedulerOptions.InFlightPerWorker"/> requests filled with fresh micro-batches (never more than the
/// run has left) and hands out scored ones in arrival order; a rollout too stale on arrival or at use is dropped and
/// drawn again with a new seed.
/// </para>
/// </summary>
/// <param name="seedForSerial">The sampling seed of the n-th micro-batch drawn or redrawn here (async draws, stale redraws, carried work).</param>
/// <param name="drawBatch">Async: the next micro-batch from the data cursor, with the cursor's epoch after drawing it.</param>
/// <param name="microBatchesLeft">Micro-batches the run still consumes from the given policy version on.</param>
/// <param name="localRewardPool">Scores rollouts while no reward worker is registered (null: none).</param>
/// <param name="send">Delivers a request to a worker.</param>
public sealed class RolloutScheduler<TWorker>(RolloutSchedulerOptions options, Func<long, long> seedForSerial, Func<(int[] Ids, int Epoch)> drawBatch,
    Func<long, long> microBatchesLeft, TWorker? localRewardPool, Action<TWorker, IScstMessage> send, Action<string> warn) where TWorker : class
{
    readonly RolloutSchedulerOptions _o = options;

    readonly List<TWorker> _rollouts = [];
    readonly List<TWorker> _rewards = [];
    readonly Dictionary<TWorker, int> _inFlight = [];
    readonly Dictionary<TWorker, double> _throughput = []; // rollout workers: images/s, an EMA over their answers
    readonly Dictionary<TWorker, DateTime> _lastAnswer = [];
    readonly Dictionary<long, RolloutWork<TWorker>> _byRequest = [];
    readonly Queue<RolloutWork<TWorker>> _toDispatch = new();
    readonly List<RolloutWork<TWorker>> _current = []; // sync: this update's parts, in order
    readonly List<RolloutWork<TWorker>> _ready = [];   // async: scored rollouts waiting for an update
    long _nextRequestId = 1, _dispatchSerial;
    int _rewardRr;

    public IReadOnlyList<TWorker> RolloutWorkers => _rollouts;
    public IReadOnlyList<TWorker> RewardWorkers => _rewards;
    /// <summary>Some reward worker, or the learner's own pool, can score.</summary>
    public bool CanScore => _rewards.Count > 0 || localRewardPool is not null;
    /// <summary>Micro-batches waiting for a rollout worker.</summary>
    public int Queued => _toDispatch.Count;
    /// <summary>Requests out at rollout or reward workers.</summary>
    public int InFlight => _byRequest.Count;
    public int AtRolloutWorkers => _byRequest.Values.Count(w => w.Rollout is null);
    /// <summary>Async: scored rollouts waiting for an update.</summary>
    public int Ready => _ready.Count;
    /// <summary>Sync: the current update's parts are planned (and not yet taken by <see cref="TakeUpdate"/>).</summary>
    public bool HasSyncUpdate => _current.Count > 0;
    /// <summary>Rollouts dropped as too stale in the whole run; the driver restores it from the journal.</summary>
    public long DroppedStale { get; set; }
    /// <summary>Rollout requests at a worker whose answer has not come back (what dispatch balances).</summary>
    public int Load(TWorker worker) => _inFlight.GetValueOrDefault(worker);
    public bool IsWorker(TWorker worker) => _rollouts.Contains(worker) || _rewards.Contains(worker);
    /// <summary>A rollout worker's measured images/s (null until its first answer).</summary>
    public double? Throughput(TWorker worker) => _throughput.TryGetValue(worker, out var t) ? t : null;
    /// <summary>Weight of a new throughput sample in a worker's moving average.</summary>
    public const double ThroughputSmoothing = 0.5;

    /// <summary>False if it is already registered.</summary>
    public bool AddRolloutWorker(TWorker worker) => Add(_rollouts, worker);
    public bool AddRewardWorker(TWorker worker) => Add(_rewards, worker);

    bool Add(List<TWorker> list, TWorker worker)
    {
        if (list.Contains(worker)) return false;
        list.Add(worker);
        _inFlight[worker] = 0;
        return true;
    }

    /// <summary>A worker left: its unanswered rollouts are queued again and its unscored ones go to another reward worker.</summary>
    public bool RemoveWorker(TWorker worker, DateTime now)
    {
        if (!_rollouts.Remove(worker) && !_rewards.Remove(worker)) return false;
        _inFlight.Remove(worker);
        _throughput.Remove(worker);
        _lastAnswer.Remove(worker);
        foreach (var work in _byRequest.Values.Where(x => Equals(x.Worker, worker) && x.Rollout is null).ToList()) Redispatch(work, atWorker: true);
        foreach (var work in _byRequest.Values.Where(x => Equals(x.Scorer, worker) && x.Score is null).ToList()) SendToReward(work, now);
        return true;
    }

    /// <summary>
    /// Sync: the current update's micro-batch <paramref name="micro"/>, cut into one contiguous part per rollout worker
    /// registered now (fewer when it has fewer images), sized by throughput, each addressed to its worker and carrying
    /// <paramref name="seed"/>. With no worker yet it is one part that waits for the first. Call in micro-batch order.
    /// </summary>
    public void AddSyncMicroBatch(int[] ids, int epoch, long seed, int micro)
    {
        if (_rollouts.Count == 0) { AddSyncPart(ids, epoch, seed, micro); return; }
        foreach (var (w, part) in RolloutShares.Cut(ids, [.. _rollouts.Select(Throughput)]))
            AddSyncPart(part, epoch, seed, micro, _rollouts[w]);
    }

    /// <summary>Sync: one part of the current update's micro-batch <paramref name="micro"/>, queued for <paramref name="worker"/> (null: the least loaded).</summary>
    public void AddSyncPart(int[] ids, int epoch, long seed, int micro, TWorker? worker = null)
    {
        var w = new RolloutWork<TWorker>(ids, epoch, seed, micro) { Target = worker };
        _current.Add(w);
        _toDispatch.Enqueue(w);
    }

    /// <summary>A micro-batch drawn before a restart and not consumed: queued again with a new seed.</summary>
    public void AddCarried(int[] ids, int epoch) => _toDispatch.Enqueue(new RolloutWork<TWorker>(ids, epoch, NextSeed()));

    /// <summary>Hands queued work to its own worker (a sync part whose worker is still there) or the least-loaded one (async: tops the pipeline up first).</summary>
    public void Pump(long version, DateTime now)
    {
        if (_o.Async)
        {
            var window = _rollouts.Count * _o.InFlightPerWorker;
            var outstanding = _byRequest.Count + _toDispatch.Count;
            while (outstanding < window && _ready.Count + outstanding < microBatchesLeft(version))
            {
                var (ids, epoch) = drawBatch();
                _toDispatch.Enqueue(new RolloutWork<TWorker>(ids, epoch, NextSeed()));
                outstanding++;
            }
        }
        while (_toDispatch.Count > 0)
        {
            var work = _toDispatch.Peek();
            // A request that timed out at a worker goes to another one whenever another is registered (it may have to wait for room).
            var avoid = work.Avoid is { } a && _rollouts.Any(w => !Equals(w, a)) ? a : null;
            var worker = work.Target is { } t && _rollouts.Contains(t) && !Equals(t, avoid)
                ? t // sync: no cap, so its own worker always has room
                : _rollouts.Where(w => !Equals(w, avoid) && _inFlight[w] < (_o.Async ? _o.InFlightPerWorker : int.MaxValue)).MinBy(w => _inFlight[w]);
            if (worker is null) return;
            _toDispatch.Dequeue();
            work.Avoid = null;
            work.RequestId = _nextRequestId++;
            work.Worker = worker;
            work.SentAt = now;
            _inFlight[worker]++;
            _byRequest[work.RequestId] = work;
            var minVersion = _o.Async ? Math.Max(0, version - _o.MaxStaleness) : version;
            send(worker, new RolloutRequest(work.RequestId, [.. work.Ids], minVersion, !_o.Async, work.Seed));
        }
    }

    /// <summary>
    /// A rollout came back: sent on to a reward worker, or (sync: from another policy version; async: too stale) queued
    /// again. Returns its work, or null for an answer to a request already answered or re-dispatched.
    /// </summary>
    public RolloutWork<TWorker>? OnRollout(RolloutResult r, long version, DateTime now)
    {
        if (!_byRequest.TryGetValue(r.RequestId, out var work) || work.Rollout is not null) return null;
        Release(work); // the answer is here, whatever happens to it next
        work.RolloutLatencyS = (now - work.SentAt).TotalSeconds;
        MeasureThroughput(work, now);
        if (!_o.Async && r.PolicyVersion != version)
        {
            warn($"learner: rollout {r.RequestId} came from v{r.PolicyVersion}, not v{version}; sending it again");
            Redispatch(work, atWorker: false);
        }
        else if (_o.Async && version - r.PolicyVersion > _o.MaxStaleness)
            DropStale(work);
        else
        {
            work.Rollout = r;
            SendToReward(work, now);
        }
        return work;
    }

    /// <summary>A score came back; false for one not awaited (answered twice, or its rollout was re-dispatched).</summary>
    public bool OnScore(ScoreResult s, DateTime? now = null)
    {
        if (!_byRequest.TryGetValue(s.RequestId, out var work) || work.Rollout is null || work.Score is not null) return false;
        work.Score = s;
        if (now is { } t) work.ScoreLatencyS = (t - work.SentAt).TotalSeconds;
        _byRequest.Remove(s.RequestId);
        if (_o.Async) _ready.Add(work);
        return true;
    }

    /// <summary>
    /// The scored micro-batches for the update at <paramref name="version"/>, removed from the scheduler, or null while
    /// they are not all there. Sync: the planned parts, in order, once all are scored. Async: the first
    /// <paramref name="microBatches"/> ready ones, after dropping those that went stale while waiting.
    /// </summary>
    public IReadOnlyList<RolloutWork<TWorker>>? TakeUpdate(long version, int microBatches)
    {
        if (!_o.Async)
        {
            if (_current.Count == 0 || _current.Any(w => w.Score is null)) return null;
            List<RolloutWork<TWorker>> parts = [.. _current];
            _current.Clear();
            return parts;
        }
        foreach (var w in _ready.Where(w => version - w.Rollout!.PolicyVersion > _o.MaxStaleness).ToList())
        {
            _ready.Remove(w);
            DropStale(w);
        }
        if (_ready.Count < microBatches) return null;
        var used = _ready.Take(microBatches).ToList();
        _ready.RemoveRange(0, microBatches);
        return used;
    }

    /// <summary>Drawn but not consumed by <paramref name="used"/>: what the journal carries across a restart, in a fixed order.</summary>
    public IReadOnlyList<RolloutWork<TWorker>> Pending(IReadOnlyCollection<RolloutWork<TWorker>> used) =>
        _byRequest.Values.Concat(_toDispatch).Concat(_ready).Where(w => !used.Contains(w)).Distinct().ToList();

    /// <summary>Requests unanswered for the timeout go elsewhere; a rollout only if another rollout worker exists.</summary>
    public void ResendOverdue(DateTime now)
    {
        foreach (var work in _byRequest.Values.ToList())
        {
            if (now - work.SentAt < _o.Timeout) continue;
            // With no other rollout worker, "elsewhere" is the same busy worker: a queued duplicate, not a rescue (a
            // BLIP-2 FlanT5-XL rollout on a CPU takes minutes). A worker that is gone is handled when it leaves.
            if (work.Rollout is null && !_rollouts.Any(r => !Equals(r, work.Worker))) continue;
            warn($"learner: request {work.RequestId} unanswered for {_o.Timeout}; sending it elsewhere");
            if (work.Rollout is null)
            {
                work.Avoid = work.Worker;
                work.Target = null; // its share goes to whoever takes it; the next update is cut by the new figures
                Redispatch(work, atWorker: true);
            }
            else if (work.Score is null) SendToReward(work, now);
        }
    }

    /// <summary>
    /// A worker serves its requests one after another, so an answer's service time runs from its dispatch or the
    /// worker's previous answer, whichever is later (not from dispatch: sync sends a worker all its parts at once).
    /// </summary>
    void MeasureThroughput(RolloutWork<TWorker> work, DateTime now)
    {
        if (work.Worker is not { } w || !_rollouts.Contains(w)) return;
        var start = _lastAnswer.TryGetValue(w, out var last) && last > work.SentAt ? last : work.SentAt;
        _lastAnswer[w] = now;
        var rate = work.Ids.Length / Math.Max(1e-3, (now - start).TotalSeconds);
        _throughput[w] = _throughput.TryGetValue(w, out var old) ? old + ThroughputSmoothing * (rate - old) : rate;
    }

    void DropStale(RolloutWork<TWorker> work)
    {
        DroppedStale++;
        work.Seed = NextSeed();
        Redispatch(work, atWorker: false); // its rollout came back: the worker's slot is already free
    }

    void SendToReward(RolloutWork<TWorker> work, DateTime now)
    {
        var pool = _rewards.Count > 0 ? _rewards[_rewardRr++ % _rewards.Count] : localRewardPool;
        if (pool is null) { warn("learner: no reward worker yet"); return; } // the next overdue check retries
        var r = work.Rollout!;
        work.Scorer = pool;
        work.SentAt = now;
        send(pool, new ScoreRequest(work.RequestId, r.ImageIds, r.K, r.Captions, r.GreedyCaptions));
    }

    /// <param name="atWorker">The request is still at its rollout worker (unanswered): its slot there is freed.</param>
    void Redispatch(RolloutWork<TWorker> work, bool atWorker)
    {
        _byRequest.Remove(work.RequestId);
        if (atWorker) Release(work);
        work.Worker = null;
        work.Rollout = null;
        work.Score = null;
        _toDispatch.Enqueue(work);
    }

    void Release(RolloutWork<TWorker> work)
    {
        if (work.Worker is not null && _inFlight.ContainsKey(work.Worker)) _inFlight[work.Worker]--;
    }

    long NextSeed() => seedForSerial(_dispatchSerial++);
}
