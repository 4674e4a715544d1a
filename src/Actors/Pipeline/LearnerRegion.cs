using Akka.Actor;
using Akka.Cluster.Sharding;

namespace Scst.Actors.Pipeline;

/// <summary>
/// The learner entities' shard region: one <see cref="LearnerActor"/> per run, the run id its entity id. Messages for a
/// run travel as Akka's <see cref="ShardingEnvelope"/> (run id, message), so no message type needs to carry the id.
/// </summary>
public static class LearnerRegion
{
    /// <summary>The region's type name (/system/sharding/learner) on learner nodes and every proxy.</summary>
    public const string Name = "learner";
    public const string Role = "learner";

    /// <summary>Enough shards that runs spread over learner nodes; each run is one entity.</summary>
    public const int Shards = 32;

    /// <summary>Akka's hash-code extractor unwraps <see cref="ShardingEnvelope"/> (and StartEntity) itself; nothing else is routed.</summary>
    public static IMessageExtractor Extractor { get; } = HashCodeMessageExtractor.Create(Shards, _ => null!, m => m);

    /// <summary>Sends <paramref name="message"/> to run <paramref name="runId"/>'s learner, wherever it lives, as <paramref name="sender"/>.</summary>
    public static void Tell(IActorRef region, string runId, object message, IActorRef? sender = null) =>
        region.Tell(new ShardingEnvelope(runId, message), sender ?? ActorRefs.NoSender);
}
