using Akka.Actor;
using Akka.Event;
using Scst.Model.SafeTensors;

namespace Scst.Actors.Weights;

/// <summary>
/// Told to the owner when a version is in memory and every chunk (and the whole file, when asked) matched the
/// announcement. <see cref="Payload"/> is the fetcher's one buffer, lent: the owner loads from it and then disposes
/// this message, which hands the buffer back for the next version (until then the fetcher receives nothing into it).
/// </summary>
public sealed class WeightsReady(long version, string sha256, SegmentedBuffer payload, Action giveBack) : IDisposable
{
    int _given;
    public long Version { get; } = version;
    public string Sha256 { get; } = sha256;
    public SegmentedBuffer Payload { get; } = payload;
    public long SizeBytes => Payload.Length;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _given, 1) == 0) giveBack();
    }
}

/// <summary>Told to the owner when a version could not be fetched intact after every attempt.</summary>
public sealed record WeightsFetchFailed(long Version, string Reason);

public sealed record GetFetcherStats
{
    public static readonly GetFetcherStats Instance = new();
}

/// <param name="BufferBytes">Memory the fetcher's payload buffer holds (one version's bytes, reused).</param>
public sealed record FetcherStats(long ChunksVerified, long ChunksRefused, long Resumes, long VersionsReady, long BufferBytes = 0);

/// <summary>
/// Rollout side of weight sync: subscribes to a <see cref="WeightPublisher"/> and, for each newer announcement,
/// streams the file from the learner node's weight server into memory with a <see cref="WeightDownloader"/> (off this
/// actor's thread), then lends the bytes to the owner (<see cref="WeightsReady"/>). One buffer, reused for every
/// version, so a node never holds two payloads: a newer announcement cancels an older transfer and starts when that
/// one has let go of the buffer, and a transfer starts only once the owner has handed the previous version back.
/// </summary>
public sealed class WeightFetcher : ReceiveActor
{
    sealed record Fetched(WeightsAvailable Info);
    sealed record Failed(WeightsAvailable Info, Exception Cause);
    sealed record GivenBack;

    readonly IActorRef _publisher;
    readonly IActorRef _owner;
    readonly WeightDownloader _downloader;
    readonly SegmentedBuffer _buffer = new();
    readonly ILoggingAdapter _log = Context.GetLogger();
    WeightsAvailable? _current, _next;
    CancellationTokenSource? _cancel;
    bool _lent;
    long _haveVersion = -1, _ready;

    public static Props Props(IActorRef publisher, IActorRef owner, WeightFetcherSettings settings) =>
        Akka.Actor.Props.Create(() => new WeightFetcher(publisher, owner, settings));

    public WeightFetcher(IActorRef publisher, IActorRef owner, WeightFetcherSettings settings)
    {
        (_publisher, _owner) = (publisher, owner);
        var log = _log;
        _downloader = new WeightDownloader(settings, warning => log.Warning("{0}", warning));

        Receive<WeightsAvailable>(OnAvailable);
        Receive<Fetched>(f =>
        {
            _current = null;
            // Superseded while it finished: the newer one goes next, this one is not worth loading.
            if (_next is null)
            {
                _haveVersion = f.Info.Version;
                _ready++;
                _lent = true;
                var self = Self;
                _owner.Tell(new WeightsReady(f.Info.Version, f.Info.Sha256, _buffer, () => self.Tell(new GivenBack())));
            }
            TryStart();
        });
        Receive<Failed>(f =>
        {
            _current = null;
            if (_next is null)
            {
                if (f.Cause is WeightVersionGoneException)
                {
                    _log.Warning("weights v{0} is gone from the learner's server; waiting for the latest", f.Info.Version);
                    _publisher.Tell(new SubscribeWeights());
                }
                else _owner.Tell(new WeightsFetchFailed(f.Info.Version, f.Cause.Message));
            }
            TryStart();
        });
        Receive<GivenBack>(_ =>
        {
            _lent = false;
            TryStart();
        });
        Receive<GetFetcherStats>(_ => Sender.Tell(new FetcherStats(_downloader.ChunksVerified, _downloader.ChunksRefused, _downloader.Resumes, _ready, _buffer.Capacity)));
    }

    protected override void PreStart() => _publisher.Tell(new SubscribeWeights());

    protected override void PostStop()
    {
        _cancel?.Cancel();
        _downloader.Dispose();
    }

    void OnAvailable(WeightsAvailable a)
    {
        if (a.Version <= Math.Max(_haveVersion, Math.Max(_current?.Version ?? -1, _next?.Version ?? -1))) return;
        _next = a;
        _cancel?.Cancel(); // the transfer in flight (if any) ends and reports; then this one starts
        TryStart();
    }

    void TryStart()
    {
        if (_current is not null || _lent || _next is null) return;
        var a = _next;
        _next = null;
        if (a.Version <= _haveVersion) return;
        _cancel?.Dispose();
        _cancel = new CancellationTokenSource();
        _current = a;
        _downloader.DownloadAsync(a, _buffer, _cancel.Token)
            .PipeTo(Self, success: () => new Fetched(a), failure: e => new Failed(a, e is AggregateException { InnerException: { } i } ? i : e));
    }
}
