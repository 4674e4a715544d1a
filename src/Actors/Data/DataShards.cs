using Akka.Actor;
using Akka.Cluster.Sharding;

namespace Scst.Actors.Data;

/// <summary>Starts the data-shard region (on nodes that host shards) or a proxy to it (elsewhere).</summary>
public static class DataShards
{
    public const string TypeName = "scst-data-shard";
    public const string HostRole = "rollout";

    /// <summary>
    /// One Akka shard per data shard. HashCodeMessageExtractor itself routes ShardRegion.StartEntity, which
    /// remember-entities sends to restart entities on the node a shard moved to.
    /// </summary>
    public sealed class Extractor(int shardCount) : HashCodeMessageExtractor(shardCount)
    {
        public override string EntityId(object message) => message switch
        {
            IDataShardCommand c => c.Shard.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => null!,
        };
    }

    public static IActorRef StartRegion(ActorSystem system, DataShardSettings settings, string role = HostRole)
    {
        settings.Validate();
        // ClusterSharding.Get injects the module's reference config; settings must be read after it.
        var extension = ClusterSharding.Get(system);
        var sharding = ClusterShardingSettings.Create(system).WithRole(role).WithRememberEntities(true);
        return extension.Start(TypeName, entityId => DataShardEntity.PropsForEntity(settings, entityId),
            sharding, new Extractor(settings.ShardCount));
    }

    public static IActorRef StartProxy(ActorSystem system, int shardCount, string role = HostRole) =>
        ClusterSharding.Get(system).StartProxy(TypeName, role, new Extractor(shardCount));
}
