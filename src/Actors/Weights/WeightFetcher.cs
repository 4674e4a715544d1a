using Akka.Actor;
using Akka.Event;

namespace Scst.Actors.Weights;

/// <summary>Told to the owner when a version is on local disk and every chunk and the whole file matched the announcement.</summary>
public sealed record WeightsReady(long Version, string Path, string Sha256, long SizeBytes);

/// <summary>Told to the owner when a version could not be fetched intact after every attempt.</summary>
public sealed record WeightsFetchFailed(long Version, string Reason);

public sealed record GetFetcherStats
{
    public static readonly GetFetcherStats Instance = new();
}

public sealed record FetcherStats(long ChunksVerified, long ChunksRefused, long Resumes, long VersionsReady);

/// <summary>
/// Rollout side of weight sync: subscribes to a <see cref="WeightPublisher"/> and, for each newer announcement,
/// streams the file from the learner node's weight server with a <see cref="WeightDownloader"/> (off this actor's
/// thread), then tells the owner <see cref="WeightsReady"/>. A newer announcement cancels an older transfer.
/// </summary>
public sealed class WeightFetcher : ReceiveActor
{
    sealed record Fetched(WeightsAvailable Info, string Path);
    sealed record Failed(WeightsAvailable Info, Exception Cause);

    readonly IActorRef _publisher;
    readonly string _cacheDir;
    readonly IActorRef _owner;
    readonly WeightDownloader _downloader;
    readonly ILoggingAdapter _log = Context.GetLogger();
    WeightsAvailable? _current;
    CancellationTokenSource? _cancel;
    long _haveVersion = -1, _ready;

    public static Props Props(IActorRef publisher, string cacheDir, IActorRef owner, WeightFetcherSettings settings) =>
        Akka.Actor.Props.Create(() => new WeightFetcher(publisher, cacheDir, owner, settings));

    public WeightFetcher(IActorRef publisher, string cacheDir, IActorRef owner, WeightFetcherSettings settings)
    {
        (_publisher, _cacheDir, _owner) = (publisher, cacheDir, owner);
        var log = _log;
        _downloader = new WeightDownloader(settings, warning => log.Warning("{0}", warning));

        Receive<WeightsAvailable>(OnAvailable);
        Receive<Fetched>(f =>
        {
            if (!ReferenceEquals(f.Info, _current)) return;
            _current = null;
            _haveVersion = f.Info.Version;
            _ready++;
            _owner.Tell(new WeightsReady(f.Info.Version, f.Path, f.Info.Sha256, f.Info.SizeBytes));
        });
        Receive<Failed>(f =>
        {
            if (!ReferenceEquals(f.Info, _current)) return;
            _current = null;
            if (f.Cause is WeightVersionGoneException)
            {
                _log.Warning("weights v{0} is gone from the learner's server; waiting for the latest", f.Info.Version);
                _publisher.Tell(new SubscribeWeights());
                return;
            }
            _owner.Tell(new WeightsFetchFailed(f.Info.Version, f.Cause.Message));
        });
        Receive<GetFetcherStats>(_ => Sender.Tell(new FetcherStats(_downloader.ChunksVerified, _downloader.ChunksRefused, _downloader.Resumes, _ready)));
    }

    protected override void PreStart() => _publisher.Tell(new SubscribeWeights());

    protected override void PostStop()
    {
        _cancel?.Cancel();
        _downloader.Dispose();
    }

    void OnAvailable(WeightsAvailable a)
    {
        if (a.Version <= _haveVersion || (_current is not null && a.Version <= _current.Version)) return;
        _cancel?.Cancel();
        _cancel = new CancellationTokenSource();
        _current = a;
        _downloader.DownloadAsync(a, _cacheDir, _cancel.Token)
            .PipeTo(Self, success: path => new Fetched(a, path), failure: e => new Failed(a, e is AggregateException { InnerException: { } i } ? i : e));
    }
}
