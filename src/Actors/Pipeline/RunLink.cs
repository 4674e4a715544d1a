using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;

namespace Scst.Actors.Pipeline;

/// <summary>
/// A worker node's way to its run's learner: whatever a rollout or reward actor tells this actor goes to the run's
/// learner entity through the shard region (wherever the entity lives, and after it moves), the worker as sender.
/// Without a run id (<c>--run-id</c> not given) it serves the first run announced on <see cref="RunIds.Topic"/>, and
/// says so, and says when the cluster has several runs to choose from.
/// </summary>
public sealed class RunLink : ReceiveActor
{
    readonly IActorRef _region;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly bool _chosen;
    readonly HashSet<string> _others = [];
    string? _runId;

    public static Props Props(IActorRef region, string? runId) => Akka.Actor.Props.Create(() => new RunLink(region, runId));

    public RunLink(IActorRef region, string? runId)
    {
        (_region, _runId, _chosen) = (region, runId, runId is not null);
        Receive<SubscribeAck>(_ => { });
        Receive<RunAnnounced>(OnAnnounced);
        // Workers repeat their messages (registration every second), so one sent before a run is known is not missed.
        ReceiveAny(m => { if (_runId is not null) LearnerRegion.Tell(_region, _runId, m, Sender); });
    }

    protected override void PreStart()
    {
        if (!_chosen) DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(RunIds.Topic, Self));
    }

    void OnAnnounced(RunAnnounced a)
    {
        if (_runId is null)
        {
            _runId = a.RunId;
            _log.Info("serving run {0} ({1}, learner on {2}); start this node with --run-id to choose a run", a.RunId, a.Mode, a.Node);
        }
        else if (a.RunId != _runId && _others.Add(a.RunId))
            _log.Warning("this cluster also runs {0}; this node serves only run {1} (start another node with --run-id {0} to serve it)", a.RunId, _runId);
    }
}
