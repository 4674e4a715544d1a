using Akka.Actor;
using Akka.Cluster.Tools.Singleton;

namespace Scst.Actors.Pipeline;

/// <summary>Where the SCST actors live in a node: the learner singleton (role learner), a proxy to it, rollout actors, a reward pool.</summary>
public static class ScstActors
{
    public const string LearnerName = "learner";
    public const string LearnerRole = "learner";

    /// <summary>The learner as a cluster singleton on the learner role; its persistence id is fixed, not tied to the node.</summary>
    public static IActorRef StartLearner(ActorSystem system, LearnerSettings settings) =>
        system.ActorOf(ClusterSingletonManager.Props(LearnerActor.Props(settings), PoisonPill.Instance,
            ClusterSingletonManagerSettings.Create(system).WithRole(LearnerRole).WithSingletonName("singleton")), LearnerName);

    /// <summary>Reaches the learner wherever it runs; buffers while it is (re)starting.</summary>
    public static IActorRef LearnerProxy(ActorSystem system) =>
        system.ActorOf(ClusterSingletonProxy.Props($"/user/{LearnerName}",
            ClusterSingletonProxySettings.Create(system).WithRole(LearnerRole).WithSingletonName("singleton").WithBufferSize(1000)), "learner-proxy");
}
