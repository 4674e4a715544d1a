using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Cluster.Sharding;
using Scst.Actors.Pipeline;

namespace Scst.Host.Cluster;

/// <summary>
/// The SCST actors a training node hosts, started by Akka.Hosting: on learner nodes the shard region of learner
/// entities (one per run, remember-entities; <c>WithShardRegion</c>), elsewhere its proxy (<c>WithShardRegionProxy</c>);
/// rollout actors and a reward pool (<c>WithActors</c>) with a <see cref="RunLink"/> to their run's learner. The
/// ActorRegistry then holds the region (or proxy) under <see cref="LearnerActor"/> and the pool under
/// <see cref="RewardPool"/>. The factories are called when the ActorSystem starts, so they may be filled in after the
/// node is built (the training code loads the corpus with the node's logger first, so a bad corpus is reported before
/// anything starts).
/// </summary>
public sealed class ScstActorHosting
{
    public const string LearnerRole = LearnerRegion.Role;

    /// <summary>What this learner node gives the run entities it hosts, given the started system.</summary>
    public Func<ActorSystem, LearnerNode>? Learner { get; set; }

    /// <summary>Replica i's settings, given its device and its link to the run's learner.</summary>
    public Func<int, string, IActorRef, RolloutSettings>? Rollout { get; set; }

    /// <summary>One rollout actor per entry (<see cref="RolloutDevices.Resolve"/>).</summary>
    public IReadOnlyList<string> RolloutDevices { get; set; } = ["cpu:0"];

    /// <summary>The reward pool's props, given its link to the run's learner.</summary>
    public Func<IActorRef, Props>? RewardPool { get; set; }

    /// <summary>The run this node's workers serve (<c>--run-id</c>); null: the first run announced in the cluster.</summary>
    public string? WorkerRunId { get; set; }

    static ShardOptions Shards => new()
    {
        Role = LearnerRole,
        // A run's entity comes back after a restart, or on another learner node when its node dies, until it ends.
        RememberEntities = true,
        RememberEntitiesStore = RememberEntitiesStore.Eventsourced,
        StateStoreMode = StateStoreMode.DData,
        // Waiting for workers is not idleness.
        ShouldPassivateIdleEntities = false,
    };

    /// <summary>Only the region proxy (the `status` and `submit` members, or a node that hosts no learner).</summary>
    public static void AddLearnerProxy(AkkaConfigurationBuilder akka) =>
        akka.WithShardRegionProxy<LearnerActor>(LearnerRegion.Name, LearnerRole, LearnerRegion.Extractor).WithDistributedPubSub("");

    /// <summary>The learner entities' region on a learner node, each run given what <paramref name="learner"/> returns for the started system.</summary>
    public static void AddLearnerRegion(AkkaConfigurationBuilder akka, Func<ActorSystem, LearnerNode> learner)
    {
        akka.WithShardRegion<LearnerActor>(LearnerRegion.Name, (system, _) =>
        {
            var node = learner(system);
            return runId => LearnerActor.Props(runId, node);
        }, LearnerRegion.Extractor, Shards);
        akka.WithDistributedPubSub("");
    }

    public void AddTo(AkkaConfigurationBuilder akka, ScstClusterOptions o)
    {
        if (o.Roles.Contains(LearnerRole)) AddLearnerRegion(akka, system => Required(Learner, "learner")(system));
        else AddLearnerProxy(akka);
        if (o.Roles.Contains("rollout"))
            akka.WithActors((system, registry) =>
            {
                var link = system.ActorOf(RunLink.Props(registry.Get<LearnerActor>(), WorkerRunId), "rollout-link");
                var settings = Required(Rollout, "rollout");
                for (var i = 0; i < RolloutDevices.Count; i++) system.ActorOf(RolloutActor.Props(settings(i, RolloutDevices[i], link)), $"rollout-{i}");
            });
        // A learner node scores with its own pool (inside the learner); only a reward node hosts one at top level.
        if (o.Role == "reward")
            akka.WithActors((system, registry) =>
            {
                var link = system.ActorOf(RunLink.Props(registry.Get<LearnerActor>(), WorkerRunId), "reward-link");
                registry.Register<RewardPool>(system.ActorOf(Required(RewardPool, "reward")(link), "reward"));
            });
    }

    static T Required<T>(T? factory, string role) where T : class =>
        factory ?? throw new InvalidOperationException($"a {role} node was started without its {role} actors' settings");
}
