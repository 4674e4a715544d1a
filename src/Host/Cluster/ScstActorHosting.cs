using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Scst.Actors.Pipeline;

namespace Scst.Host.Cluster;

/// <summary>
/// The SCST actors a training node hosts, started by Akka.Hosting: the learner as a cluster singleton on the
/// learner role (<c>WithSingleton</c>, which also registers its proxy) or just the proxy elsewhere
/// (<c>WithSingletonProxy</c>), rollout replicas and a reward pool (<c>WithActors</c>). The ActorRegistry then
/// holds the proxy under <see cref="LearnerActor"/> and the pool under <see cref="RewardPool"/>.
/// The factories are called when the ActorSystem starts, so they may be filled in after the node is built (the
/// training code loads the corpus with the node's logger first, so a bad corpus is reported before anything starts).
/// </summary>
public sealed class ScstActorHosting
{
    /// <summary>The singleton manager's name (/user/learner), the singleton's (/user/learner/learner) and the proxy's prefix (/user/learner-proxy).</summary>
    public const string LearnerName = "learner";
    public const string LearnerRole = "learner";

    /// <summary>The learner's settings, given the started system (its address goes into the command line it prints).</summary>
    public Func<ActorSystem, LearnerSettings>? Learner { get; set; }

    /// <summary>Replica i's settings, given its device and the learner proxy.</summary>
    public Func<int, string, IActorRef, RolloutSettings>? Rollout { get; set; }

    /// <summary>One rollout actor per entry (<see cref="RolloutDevices.Resolve"/>).</summary>
    public IReadOnlyList<string> RolloutDevices { get; set; } = ["cpu:0"];

    /// <summary>The reward pool's props, given the learner proxy.</summary>
    public Func<IActorRef, Props>? RewardPool { get; set; }

    static ClusterSingletonOptions Singleton => new()
    {
        Role = LearnerRole,
        // The learner persists its state; a PoisonPill lets it finish the message it is on when it hands over.
        TerminationMessage = PoisonPill.Instance,
        // Workers register every second; while the learner (re)starts their messages wait here.
        BufferSize = 1000,
    };

    /// <summary>Only the proxy (the `status` command, or a node that hosts no learner).</summary>
    public static void AddLearnerProxy(AkkaConfigurationBuilder akka) => akka.WithSingletonProxy<LearnerActor>(LearnerName, Singleton);

    public void AddTo(AkkaConfigurationBuilder akka, ScstClusterOptions o)
    {
        if (o.Roles.Contains(LearnerRole))
            akka.WithSingleton<LearnerActor>(LearnerName, (system, _, _) => LearnerActor.Props(Required(Learner, "learner")(system)), Singleton, createProxyToo: true);
        else AddLearnerProxy(akka);
        if (o.Roles.Contains("rollout"))
            akka.WithActors((system, registry) =>
            {
                var proxy = registry.Get<LearnerActor>();
                var settings = Required(Rollout, "rollout");
                for (var i = 0; i < RolloutDevices.Count; i++) system.ActorOf(RolloutActor.Props(settings(i, RolloutDevices[i], proxy)), $"rollout-{i}");
            });
        // A learner node scores with its own pool (inside the learner); only a reward node hosts one at top level.
        if (o.Role == "reward")
            akka.WithActors((system, registry) =>
                registry.Register<RewardPool>(system.ActorOf(Required(RewardPool, "reward")(registry.Get<LearnerActor>()), "reward")));
    }

    static T Required<T>(T? factory, string role) where T : class =>
        factory ?? throw new InvalidOperationException($"a {role} node was started without its {role} actors' settings");
}
