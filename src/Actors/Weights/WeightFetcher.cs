using System.Security.Cryptography;
using Akka.Actor;
using Akka.Event;

namespace Scst.Actors.Weights;

/// <summary>Told to the owner when a version is on local disk and its SHA-256 matched the announcement.</summary>
public sealed record WeightsReady(long Version, string Path, string Sha256, long SizeBytes);

/// <summary>Told to the owner when a version could not be fetched intact after every attempt.</summary>
public sealed record WeightsFetchFailed(long Version, string Reason);

public sealed record GetFetcherStats
{
    public static readonly GetFetcherStats Instance = new();
}

public sealed record FetcherStats(long ChunksReceived, long ChunksRefused, long ChunkTimeouts, long WholeFileRetries, long VersionsReady);

/// <remarks>The defaults live in Scst.Host.Cluster.ScstClusterOptions (scst.weights.*).</remarks>
public sealed record WeightFetcherSettings(int MaxChunksInFlight, TimeSpan ChunkTimeout, int MaxAttempts)
{
    public TimeSpan Timeout => ChunkTimeout;
}

/// <summary>
/// Rollout side of weight sync: subscribes to a <see cref="WeightPublisher"/>, pulls each new version in chunks
/// (a bounded window in flight), refuses any chunk whose SHA-256 or length is wrong and asks for it again,
/// checks the whole file's SHA-256, and only then moves it into place atomically and tells the owner.
/// A newer announcement abandons an older transfer.
/// </summary>
public sealed class WeightFetcher : ReceiveActor, IWithTimers
{
    sealed class Transfer(WeightsAvailable info, string partialPath, FileStream file)
    {
        public WeightsAvailable Info { get; } = info;
        public string PartialPath { get; } = partialPath;
        public FileStream File { get; } = file;
        public bool[] Received { get; } = new bool[info.ChunkCount];
        public int ReceivedCount { get; set; }
        public int NextIndex { get; set; }
        public Dictionary<int, (DateTime SentAt, int Attempts)> InFlight { get; } = [];
        public Queue<int> Retry { get; } = new();
        public int WholeAttempts { get; set; } = 1;
    }

    readonly IActorRef _publisher;
    readonly string _cacheDir;
    readonly IActorRef _owner;
    readonly WeightFetcherSettings _settings;
    readonly ILoggingAdapter _log = Context.GetLogger();
    Transfer? _t;
    long _haveVersion = -1;
    long _received, _refused, _timeouts, _wholeRetries, _ready;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef publisher, string cacheDir, IActorRef owner, WeightFetcherSettings settings) =>
        Akka.Actor.Props.Create(() => new WeightFetcher(publisher, cacheDir, owner, settings));

    public WeightFetcher(IActorRef publisher, string cacheDir, IActorRef owner, WeightFetcherSettings settings)
    {
        _publisher = publisher;
        _cacheDir = cacheDir;
        _owner = owner;
        _settings = settings;
        Directory.CreateDirectory(cacheDir);

        Receive<WeightsAvailable>(OnAvailable);
        Receive<WeightChunk>(OnChunk);
        Receive<WeightVersionGone>(g =>
        {
            if (_t?.Info.Version != g.Version) return;
            _log.Warning("weights v{0} is gone from the publisher (latest v{1}); waiting for the latest", g.Version, g.Latest);
            Abandon();
            _publisher.Tell(new SubscribeWeights());
        });
        Receive<Tick>(_ => OnTick());
        Receive<GetFetcherStats>(_ => Sender.Tell(new FetcherStats(_received, _refused, _timeouts, _wholeRetries, _ready)));
    }

    sealed record Tick { public static readonly Tick Instance = new(); }

    protected override void PreStart()
    {
        _publisher.Tell(new SubscribeWeights());
        var every = TimeSpan.FromTicks(Math.Max(_settings.Timeout.Ticks / 4, TimeSpan.FromMilliseconds(50).Ticks));
        Timers.StartPeriodicTimer("tick", Tick.Instance, every);
    }

    protected override void PostStop() => Abandon();

    string FinalPath(long version) => Path.Combine(_cacheDir, $"policy-v{version}.safetensors");

    void OnAvailable(WeightsAvailable a)
    {
        if (a.Version <= _haveVersion || (_t is not null && a.Version <= _t.Info.Version)) return;
        if (a.ChunkSize <= 0 || a.SizeBytes < 0 || a.Sha256.Length != 64)
        {
            _owner.Tell(new WeightsFetchFailed(a.Version, $"malformed announcement {a}"));
            return;
        }
        Abandon();
        Begin(a, attempt: 1);
    }

    void Begin(WeightsAvailable a, int attempt)
    {
        var partial = FinalPath(a.Version) + ".partial";
        var fs = new FileStream(partial, FileMode.Create, FileAccess.ReadWrite, FileShare.None);
        fs.SetLength(a.SizeBytes);
        _t = new Transfer(a, partial, fs) { WholeAttempts = attempt };
        Fill();
        if (a.ChunkCount == 0) Complete();
    }

    void Fill()
    {
        var t = _t!;
        while (t.InFlight.Count < _settings.MaxChunksInFlight)
        {
            int index;
            if (t.Retry.Count > 0) index = t.Retry.Dequeue();
            else if (t.NextIndex < t.Info.ChunkCount) index = t.NextIndex++;
            else break;
            Request(index, t.InFlight.TryGetValue(index, out var prev) ? prev.Attempts + 1 : 1);
        }
    }

    void Request(int index, int attempts)
    {
        _t!.InFlight[index] = (DateTime.UtcNow, attempts);
        _publisher.Tell(new FetchWeightChunk(_t.Info.Version, index));
    }

    void OnChunk(WeightChunk c)
    {
        var t = _t;
        if (t is null || c.Version != t.Info.Version || c.Index < 0 || c.Index >= t.Received.Length || t.Received[c.Index]) return;
        var offset = (long)c.Index * t.Info.ChunkSize;
        var expectedLength = (int)Math.Min(t.Info.ChunkSize, t.Info.SizeBytes - offset);
        var attempts = t.InFlight.TryGetValue(c.Index, out var f) ? f.Attempts : 1;
        if (c.Data.Length != expectedLength || Convert.ToHexStringLower(SHA256.HashData(c.Data.Span)) != c.Sha256)
        {
            _refused++;
            _log.Warning("weights v{0} chunk {1}: bad length or SHA-256 (attempt {2}); refused and requested again", c.Version, c.Index, attempts);
            if (attempts >= _settings.MaxAttempts) { Fail($"chunk {c.Index} arrived damaged {attempts} times"); return; }
            Request(c.Index, attempts + 1);
            return;
        }
        RandomAccess.Write(t.File.SafeFileHandle, c.Data.Span, offset);
        t.Received[c.Index] = true;
        t.ReceivedCount++;
        t.InFlight.Remove(c.Index);
        _received++;
        if (t.ReceivedCount == t.Received.Length) Complete();
        else Fill();
    }

    void OnTick()
    {
        var t = _t;
        if (t is null) return;
        var now = DateTime.UtcNow;
        foreach (var (index, (sentAt, attempts)) in t.InFlight.ToList())
        {
            if (now - sentAt < _settings.Timeout) continue;
            _timeouts++;
            if (attempts >= _settings.MaxAttempts) { Fail($"chunk {index} timed out {attempts} times"); return; }
            Request(index, attempts + 1);
        }
    }

    void Complete()
    {
        var t = _t!;
        t.File.Flush(flushToDisk: true);
        t.File.Position = 0;
        var sha = Convert.ToHexStringLower(SHA256.HashData(t.File));
        t.File.Dispose();
        if (sha != t.Info.Sha256)
        {
            _wholeRetries++;
            File.Delete(t.PartialPath);
            _t = null;
            if (t.WholeAttempts >= _settings.MaxAttempts) { _owner.Tell(new WeightsFetchFailed(t.Info.Version, $"whole-file SHA-256 {sha} != announced {t.Info.Sha256} after {t.WholeAttempts} attempts")); return; }
            _log.Warning("weights v{0}: whole-file SHA-256 {1} != announced {2}; fetching again (attempt {3})", t.Info.Version, sha, t.Info.Sha256, t.WholeAttempts + 1);
            Begin(t.Info, t.WholeAttempts + 1);
            return;
        }
        var final = FinalPath(t.Info.Version);
        File.Move(t.PartialPath, final, overwrite: true);
        _t = null;
        _haveVersion = t.Info.Version;
        _ready++;
        _owner.Tell(new WeightsReady(t.Info.Version, final, sha, t.Info.SizeBytes));
    }

    void Fail(string reason)
    {
        var v = _t!.Info.Version;
        Abandon();
        _owner.Tell(new WeightsFetchFailed(v, reason));
    }

    void Abandon()
    {
        if (_t is null) return;
        _t.File.Dispose();
        try { File.Delete(_t.PartialPath); } catch (IOException) { }
        _t = null;
    }
}
