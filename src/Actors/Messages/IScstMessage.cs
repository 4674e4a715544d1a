namespace Scst.Actors.Messages;

/// <summary>
/// Marker for every message that may cross nodes or be journaled. Scst.Host.Cluster.ScstAkka binds it (WithCustomSerializer) to
/// <see cref="Serialization.ScstProtobufSerializer"/>; each implementing type must be registered there.
/// </summary>
public interface IScstMessage;
