using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;

namespace Scst.Actors.Pipeline;

/// <summary>
/// A reward node serving every run of the cluster (<c>node --role reward</c>): for each run announced on
/// <see cref="RunIds.Topic"/> it asks the run's learner for its <see cref="RunSpec"/>, loads that run's training
/// references and CIDEr-D document frequencies once (<paramref name="load"/>, off the actor's thread), and starts a
/// <see cref="RewardPool"/> of its own that registers with the run like any reward node. When the run ends its pool
/// and references go; a run that refuses this node (another build or corpus) is left alone.
/// </summary>
public sealed class SharedRewardNode : ReceiveActor, IWithTimers
{
    sealed record AskSpecs { public static readonly AskSpecs Instance = new(); }
    sealed record Loaded(string RunId, RewardContext Context);
    sealed record LoadFailed(string RunId, string Error);
    sealed record Ended(string RunId, string? Refused);

    enum State { Asking, Loading, Serving, Refused }

    readonly Dictionary<string, State> _runs = [];
    readonly Dictionary<string, IActorRef> _pools = [];
    readonly ILoggingAdapter _log = Context.GetLogger();

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef region, Func<RunSpec, RewardContext> load, int poolSize) =>
        Akka.Actor.Props.Create(() => new SharedRewardNode(region, load, poolSize));

    public SharedRewardNode(IActorRef region, Func<RunSpec, RewardContext> load, int poolSize)
    {
        Receive<SubscribeAck>(_ => { });
        Receive<RunAnnounced>(a => _runs.TryAdd(a.RunId, State.Asking));
        Receive<AskSpecs>(_ =>
        {
            foreach (var (id, state) in _runs)
                if (state == State.Asking) LearnerRegion.Tell(region, id, GetRunSpec.Instance, Self);
        });
        Receive<RunSubmitted>(s =>
        {
            var id = s.Spec.RunId;
            if (!_runs.TryGetValue(id, out var state) || state != State.Asking) return;
            _runs[id] = State.Loading;
            _log.Info("reward: run {0}: loading its training references ({1})", id, s.Spec.ConfigPath);
            Task.Run(() => load(s.Spec)).PipeTo(Self, success: c => new Loaded(id, c),
                failure: e => new LoadFailed(id, e is AggregateException { InnerException: { } inner } ? inner.Message : e.Message));
        });
        Receive<Loaded>(l =>
        {
            if (!_runs.ContainsKey(l.RunId)) return;
            _runs[l.RunId] = State.Serving;
            var self = Self;
            var done = new TaskCompletionSource<TrainingFinished>(TaskCreationOptions.RunContinuationsAsynchronously);
            done.Task.ContinueWith(t => self.Tell(new Ended(l.RunId, t.IsFaulted ? t.Exception!.InnerException!.Message : null)), TaskScheduler.Default);
            var link = Context.ActorOf(RunLink.Props(region, l.RunId), $"link-{l.RunId}");
            _pools[l.RunId] = Context.ActorOf(RewardPool.Props(l.Context, poolSize, link, done), $"run-{l.RunId}");
            _log.Info("reward: run {0}: references of {1} images and their document frequencies loaded; scoring for it", l.RunId, l.Context.References.Count);
        });
        Receive<LoadFailed>(f =>
        {
            _runs[f.RunId] = State.Refused;
            _log.Warning("reward: run {0}: cannot load its references ({1}); this node does not serve it", f.RunId, f.Error);
        });
        Receive<Ended>(e =>
        {
            if (_pools.Remove(e.RunId, out var pool)) Context.Stop(pool);
            Context.Child($"link-{e.RunId}").Tell(PoisonPill.Instance);
            if (e.Refused is not null)
            {
                _runs[e.RunId] = State.Refused;
                _log.Warning("reward: run {0}: {1}", e.RunId, e.Refused);
                return;
            }
            // Announced again only if it is started again: then its references are loaded again.
            _runs.Remove(e.RunId);
            _log.Info("reward: run {0} ended; its references are released", e.RunId);
        });
        Timers.StartPeriodicTimer("specs", AskSpecs.Instance, TimeSpan.FromSeconds(1));
    }

    protected override void PreStart() => DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(RunIds.Topic, Self));
}
