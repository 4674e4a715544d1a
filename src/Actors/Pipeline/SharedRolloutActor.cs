using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using Microsoft.Extensions.Logging;
using Scst.Actors.Weights;
using Scst.Training;
using Scst.Training.Configuration;
using TorchSharp;

namespace Scst.Actors.Pipeline;

/// <param name="BaseConfig">The node's config: the model (its frozen base) and the images every run served here must share.</param>
/// <param name="ConfigOf">A run's config from the spec its learner journaled (the rollout settings are the run's own).</param>
/// <param name="RunWeights"><c>scst.rollout.run-weights</c>: a run's share of this actor relative to the others (1 unless set; <see cref="FairShare"/>).</param>
/// <param name="MemoryBudgetBytes"><c>scst.rollout.memory-budget</c>: base plus overlays held on the device; 0 = no limit. Over it, the least recently used run's overlay goes (that run fetches its weights again when next served).</param>
public sealed record SharedRolloutSettings(ScstConfig BaseConfig, string WorkDir, IActorRef Region, ILogger Log, WeightFetcherSettings Fetcher, string Device,
    Func<RunSpec, ScstConfig> ConfigOf, long MemoryBudgetBytes = 0, IReadOnlyDictionary<string, double>? RunWeights = null);

/// <summary>
/// A rollout actor shared by every run of the cluster (<c>node --role rollout --config BASE</c>): one model on its
/// device, so one frozen base, and per run a lane with that run's trainable overlay at its current version, its own
/// rollout settings (sampling, K, lengths: a <see cref="RolloutGenerator"/> over the run's config), its weight
/// fetcher and its queue. Before generating for a run it copies that run's overlay into the model. Runs are served
/// one request at a time by their shares (<see cref="FairShare"/>). A run whose model or images differ from the base is refused by its learner
/// (the fingerprint's model and data fields come from the base, the rollout fields from the run).
/// </summary>
public sealed class SharedRolloutActor : ReceiveActor, IWithTimers
{
    sealed record Tick { public static readonly Tick Instance = new(); }
    /// <summary>A message from run <see cref="RunId"/>'s learner, relayed by that run's lane child (which registered as the worker).</summary>
    sealed record FromRun(string RunId, object Message, IActorRef Learner);

    sealed class Lane(string runId, ScstConfig config, RolloutGenerator generator, WorkerFingerprint fingerprint, IActorRef proxy)
    {
        public string RunId { get; } = runId;
        public ScstConfig Config { get; } = config;
        public RolloutGenerator Generator { get; } = generator;
        public WorkerFingerprint Fingerprint { get; } = fingerprint;
        public IActorRef Proxy { get; } = proxy;
        public IActorRef? Publisher, Fetcher;
        public long Version = -1;
        public Dictionary<string, torch.Tensor>? Overlay;
        public long LastServed, Served;
        public bool Refused;
        public readonly Queue<(RolloutRequest Request, IActorRef ReplyTo, long Received)> Queue = new();
    }

    readonly SharedRolloutSettings _s;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly RunSetup _setup;
    readonly string _node;
    readonly Dictionary<string, Lane?> _lanes = [];   // null: asked for its spec
    readonly Dictionary<IActorRef, Lane> _byFetcher = [];
    readonly (string Name, torch.Tensor Param)[] _trainable;
    int _fetchers;
    Lane? _loaded;
    long _clock;

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Bytes of the frozen base held on the device (once, whatever the number of runs).</summary>
    public long BaseBytes { get; }
    /// <summary>Bytes of one run's trainable overlay.</summary>
    public long OverlayBytes { get; }

    public static Props Props(SharedRolloutSettings s) => Akka.Actor.Props.Create(() => new SharedRolloutActor(s)).WithDispatcher(RolloutActor.Dispatcher);

    public SharedRolloutActor(SharedRolloutSettings s)
    {
        _s = s;
        _node = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();
        _setup = RolloutDevices.LoadModel(s.BaseConfig, s.Device, s.WorkDir, s.Log);
        var parameters = _setup.Policy.Model.named_parameters().ToArray();
        _trainable = [.. parameters.Where(p => p.parameter.requires_grad).Select(p => (p.name, (torch.Tensor)p.parameter))];
        OverlayBytes = _trainable.Sum(p => p.Param.NumberOfElements * p.Param.ElementSize);
        BaseBytes = parameters.Where(p => !p.parameter.requires_grad).Sum(p => p.parameter.NumberOfElements * p.parameter.ElementSize);
        _log.Info("{0}: shared by runs on {1}: frozen base {2} bytes held once, {3} bytes of trainable overlay per run", Self.Path.Name, s.Device, BaseBytes, OverlayBytes);

        Receive<SubscribeAck>(_ => { });
        Receive<RunAnnounced>(a => { if (_lanes.TryAdd(a.RunId, null)) LearnerRegion.Tell(_s.Region, a.RunId, GetRunSpec.Instance, Self); });
        Receive<RunSubmitted>(r => AddLane(r.Spec));
        Receive<Tick>(_ => OnTick());
        Receive<FromRun>(OnFromRun);
        Receive<WeightsReady>(OnWeights);
        Receive<WeightsFetchFailed>(f =>
        {
            if (!_byFetcher.TryGetValue(Sender, out var lane)) return;
            _log.Warning("{0}: run {1}: weights v{2} could not be fetched ({3}); subscribing again", Self.Path.Name, lane.RunId, f.Version, f.Reason);
            StartFetcher(lane);
        });
    }

    protected override void PreStart()
    {
        DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(RunIds.Topic, Self));
        Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }

    protected override void PostStop()
    {
        foreach (var lane in _lanes.Values) DropOverlay(lane);
        _setup.Dispose();
    }

    /// <summary>Every second: ask runs not yet described for their spec, and register with the rest (a moved learner finds us again).</summary>
    void OnTick()
    {
        foreach (var (id, lane) in _lanes)
            if (lane is null) LearnerRegion.Tell(_s.Region, id, GetRunSpec.Instance, Self);
            else if (!lane.Refused) lane.Proxy.Tell(new RegisterWorker(RegisterWorker.Rollout, _node, lane.Fingerprint));
    }

    void AddLane(RunSpec spec)
    {
        if (!_lanes.TryGetValue(spec.RunId, out var known) || known is not null) return;
        ScstConfig config;
        try { config = _s.ConfigOf(spec); }
        catch (Exception e)
        {
            _log.Warning("{0}: run {1}: its config cannot be read here ({2}); not serving it", Self.Path.Name, spec.RunId, e.Message);
            return;
        }
        var proxy = Context.ActorOf(Akka.Actor.Props.Create(() => new LaneProxy(spec.RunId, _s.Region)), $"run-{spec.RunId}");
        var lane = new Lane(spec.RunId, config, new RolloutGenerator(_setup.Policy, _setup.Corpus.Train, config), WorkerFingerprint.ForRollout(_setup, config), proxy);
        _lanes[spec.RunId] = lane;
        _log.Info("{0}: serving run {1} ({2}, K={3})", Self.Path.Name, spec.RunId, config.Scst.Mode.Name(), config.Scst.SampleN);
    }

    void OnFromRun(FromRun m)
    {
        if (!_lanes.TryGetValue(m.RunId, out var lane) || lane is null) return;
        switch (m.Message)
        {
            case WorkerWelcome w when !Equals(w.Publisher, lane.Publisher):
                _log.Info("{0}: run {1}: learner at {2} (policy v{3})", Self.Path.Name, lane.RunId, w.Publisher.Path.Address, w.PolicyVersion);
                lane.Publisher = w.Publisher;
                lane.Version = -1;
                lane.Queue.Clear();
                DropOverlay(lane);
                StartFetcher(lane);
                break;
            case WorkerRefused r:
                lane.Refused = true;
                _log.Error("{0}: run {1} refused this node: {2}", Self.Path.Name, lane.RunId, r.Reason);
                break;
            case RolloutRequest r:
                lane.Queue.Enqueue((r, m.Learner, Stopwatch.GetTimestamp()));
                Serve();
                break;
            case TrainingFinished f:
                _log.Info("{0}: run {1} {2} after {3} updates; served {4} rollouts for it", Self.Path.Name, lane.RunId, f.Stopped ? "stopped" : "finished", f.Updates, lane.Served);
                Remove(lane);
                break;
        }
    }

    void Remove(Lane lane)
    {
        DropOverlay(lane);
        if (lane.Fetcher is not null) { _byFetcher.Remove(lane.Fetcher); Context.Stop(lane.Fetcher); }
        Context.Stop(lane.Proxy);
        // Announced again only if it is started again.
        _lanes.Remove(lane.RunId);
        if (_loaded == lane) _loaded = null;
    }

    void StartFetcher(Lane lane)
    {
        if (lane.Fetcher is not null) { _byFetcher.Remove(lane.Fetcher); Context.Stop(lane.Fetcher); }
        lane.Fetcher = Context.ActorOf(WeightFetcher.Props(lane.Publisher!, Self, _s.Fetcher), $"fetcher-{lane.RunId}-{++_fetchers}");
        _byFetcher[lane.Fetcher] = lane;
    }

    void OnWeights(WeightsReady w)
    {
        using (w)
        {
            if (!_byFetcher.TryGetValue(Sender, out var lane) || w.Version <= lane.Version) return;
            MakeRoom(lane);
            PolicyWeights.Load(_setup.Policy.Model, _setup.Base, w.Payload, $"run {lane.RunId}: weights v{w.Version} fetched from its learner");
            lane.Version = w.Version;
            Keep(lane);
        }
        Serve();
    }

    /// <summary>The model now holds <paramref name="lane"/>'s trainable values: they become its overlay.</summary>
    void Keep(Lane lane)
    {
        using var _ = torch.no_grad();
        if (lane.Overlay is null)
        {
            lane.Overlay = _trainable.ToDictionary(p => p.Name, p => p.Param.detach().clone());
            ReportMemory();
        }
        else foreach (var (name, p) in _trainable) lane.Overlay[name].copy_(p);
        _loaded = lane;
    }

    /// <summary>Before loading a run's overlay: over <c>scst.rollout.memory-budget</c>, the least recently served other run's goes.</summary>
    void MakeRoom(Lane lane)
    {
        if (_s.MemoryBudgetBytes <= 0 || lane.Overlay is not null) return;
        while (BaseBytes + OverlayBytes * (_lanes.Values.Count(l => l?.Overlay is not null) + 1) > _s.MemoryBudgetBytes
               && _lanes.Values.Where(l => l is { Overlay: not null } && l != lane).MinBy(l => l!.LastServed) is { } victim)
        {
            _log.Info("{0}: memory budget {1} bytes: run {2}'s overlay (v{3}) evicted; it is fetched again when needed", Self.Path.Name, _s.MemoryBudgetBytes, victim.RunId, victim.Version);
            DropOverlay(victim);
            victim.Version = -1;
            if (victim.Publisher is not null) StartFetcher(victim);
        }
    }

    void DropOverlay(Lane? lane)
    {
        if (lane?.Overlay is null) return;
        foreach (var t in lane.Overlay.Values) t.Dispose();
        lane.Overlay = null;
        if (_loaded == lane) _loaded = null;
    }

    void ReportMemory() =>
        _log.Info("{0}: holds frozen base {1} bytes once; overlays {2}", Self.Path.Name, BaseBytes,
            string.Join(", ", _lanes.Values.Where(l => l?.Overlay is not null).Select(l => $"run {l!.RunId} {OverlayBytes} bytes")));

    /// <summary>One request at a time, from the run furthest below its share (<see cref="FairShare"/>: round-robin with equal weights).</summary>
    void Serve()
    {
        while (true)
        {
            var ready = _lanes.Values.OfType<Lane>().Where(l => l.Queue.Count > 0 && l.Overlay is not null && l.Version >= l.Queue.Peek().Request.MinVersion).ToList();
            if (ready.Count == 0) return;
            var lane = ready[FairShare.Next([.. ready.Select(l => new FairShare.Candidate(l.RunId, l.Served, l.LastServed))], _s.RunWeights)];
            var (r, replyTo, received) = lane.Queue.Dequeue();
            if (r.ExactVersion && lane.Version != r.MinVersion) continue; // the learner has moved past this request
            if (_loaded != lane)
            {
                using var _ = torch.no_grad();
                foreach (var (name, p) in _trainable) p.copy_(lane.Overlay![name]);
                _loaded = lane;
            }
            var waited = Stopwatch.GetElapsedTime(received).TotalSeconds;
            var started = Stopwatch.GetTimestamp();
            RolloutBatch batch;
            string[]? greedy;
            try
            {
                batch = lane.Generator.Generate([.. r.ImageIds], lane.Version, unchecked((ulong)r.Seed));
                greedy = lane.Generator.GreedyCaptions([.. r.ImageIds]);
            }
            catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or InvalidOperationException)
            {
                _log.Error(e, "{0}: run {1}: rollout {2} failed ({3}); its learner will send it again", Self.Path.Name, lane.RunId, r.RequestId, e.Message);
                continue;
            }
            replyTo.Tell(RolloutResult.From(r.RequestId, batch, greedy, _node, _s.Device, waited, Stopwatch.GetElapsedTime(started).TotalSeconds), lane.Proxy);
            lane.Served++;
            lane.LastServed = ++_clock;
        }
    }

    /// <summary>Registers with one run as the worker, so the run's learner talks to it; relays what the learner says to the shared actor with the run's id.</summary>
    sealed class LaneProxy : ReceiveActor
    {
        public LaneProxy(string runId, IActorRef region)
        {
            Receive<RegisterWorker>(r => LearnerRegion.Tell(region, runId, r, Self));
            ReceiveAny(m => Context.Parent.Tell(new FromRun(runId, m, Sender)));
        }
    }
}
