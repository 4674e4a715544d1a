using Akka.Actor;
using Akka.Event;

namespace Scst.Actors.Weights;

/// <summary>Local command to the publisher: <see cref="Path"/> is a complete (atomically written) safetensors file,
/// <see cref="Sha256"/> its hash when the writer already knows it (null: the server hashes the file).</summary>
public sealed record PublishWeights(long Version, string Path, string? Sha256 = null);

/// <summary>
/// Learner side of weight sync: hands each published file to the node's <see cref="WeightServer"/> (which hashes it
/// per chunk and serves the bytes over HTTP(S)) and announces the metadata, <see cref="WeightsAvailable"/>, to every
/// subscribed fetcher. No weight bytes travel through Akka. Owns the server and stops it with itself.
/// </summary>
public sealed class WeightPublisher : ReceiveActor
{
    readonly WeightServer _server;
    readonly HashSet<IActorRef> _subscribers = [];
    readonly ILoggingAdapter _log = Context.GetLogger();
    WeightsAvailable? _latest;

    public static Props Props(WeightServer server) => Akka.Actor.Props.Create(() => new WeightPublisher(server));

    public WeightPublisher(WeightServer server)
    {
        _server = server;
        Receive<PublishWeights>(Publish);
        Receive<SubscribeWeights>(_ =>
        {
            if (_subscribers.Add(Sender)) Context.Watch(Sender);
            if (_latest is not null) Sender.Tell(_latest);
        });
        Receive<Terminated>(t => _subscribers.Remove(t.ActorRef));
    }

    void Publish(PublishWeights p)
    {
        WeightsAvailable info;
        try { info = _server.Add(p.Version, p.Path, p.Sha256); }
        catch (Exception e) when (e is ArgumentException or IOException)
        {
            Sender.Tell(new Status.Failure(e));
            return;
        }
        _latest = info;
        _log.Info("weights v{0} published at {1}: {2} bytes, sha256 {3}, {4} chunks of {5} bytes", p.Version, info.Url, info.SizeBytes, info.Sha256, info.ChunkCount, info.ChunkSize);
        foreach (var s in _subscribers) s.Tell(info);
        Sender.Tell(info);
    }

    protected override void PostStop() => _server.Dispose();
}
