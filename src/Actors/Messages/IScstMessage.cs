namespace Scst.Actors.Messages;

/// <summary>
/// Marker for every message that may cross nodes or be journaled. hocon/base.conf binds it to
/// <see cref="Serialization.ScstProtobufSerializer"/>; each implementing type must be registered there.
/// </summary>
public interface IScstMessage;
