using System.Security.Cryptography;
using Akka.Actor;
using Akka.Event;
using Google.Protobuf;

namespace Scst.Actors.Weights;

/// <summary>Local command to the publisher: <see cref="Path"/> is a complete (atomically written) safetensors file.</summary>
public sealed record PublishWeights(long Version, string Path);

/// <summary>
/// Learner side of weight sync. Announces (version, sha256, size) to subscribers and serves the file in chunks
/// on request, so no single remote message comes near Akka.Remote's frame limit. Keeps the newest few versions
/// so fetchers that are mid-transfer when a new version lands can finish.
/// </summary>
public sealed class WeightPublisher : ReceiveActor
{
    sealed record Entry(string Path, WeightsAvailable Info, SafeFileHandleBox Handle);

    /// <summary>Holds the file open so the served bytes stay the ones that were hashed even if the path is replaced.</summary>
    sealed class SafeFileHandleBox(Microsoft.Win32.SafeHandles.SafeFileHandle handle) : IDisposable
    {
        public Microsoft.Win32.SafeHandles.SafeFileHandle Handle { get; } = handle;
        public void Dispose() => Handle.Dispose();
    }

    readonly int _chunkSize;
    readonly int _keepVersions;
    readonly SortedDictionary<long, Entry> _versions = [];
    readonly HashSet<IActorRef> _subscribers = [];
    readonly ILoggingAdapter _log = Context.GetLogger();

    public static Props Props(int chunkSize, int keepVersions) =>
        Akka.Actor.Props.Create(() => new WeightPublisher(chunkSize, keepVersions));

    public WeightPublisher(int chunkSize, int keepVersions)
    {
        if (chunkSize is <= 0 or > 120_000) throw new ArgumentException($"scst.weights.chunk-size {chunkSize} must be in 1..120000 (Akka.Remote frame limit 128,000 bytes)");
        if (keepVersions < 1) throw new ArgumentException($"scst.weights.keep-versions {keepVersions} must be >= 1");
        _chunkSize = chunkSize;
        _keepVersions = keepVersions;

        Receive<PublishWeights>(Publish);
        Receive<SubscribeWeights>(_ =>
        {
            if (_subscribers.Add(Sender)) Context.Watch(Sender);
            if (_versions.Count > 0) Sender.Tell(_versions.Last().Value.Info);
        });
        Receive<FetchWeightChunk>(Serve);
        Receive<Terminated>(t => _subscribers.Remove(t.ActorRef));
    }

    void Publish(PublishWeights p)
    {
        if (_versions.Count > 0 && p.Version <= _versions.Keys.Max())
        {
            Sender.Tell(new Status.Failure(new ArgumentException($"weights version {p.Version} is not newer than the published {_versions.Keys.Max()}")));
            return;
        }
        var handle = File.OpenHandle(p.Path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        var size = RandomAccess.GetLength(handle);
        var sha = Convert.ToHexStringLower(SHA256.HashData(new HandleStream(handle, size)));
        var info = new WeightsAvailable(p.Version, sha, size, _chunkSize);
        _versions[p.Version] = new Entry(p.Path, info, new SafeFileHandleBox(handle));
        while (_versions.Count > _keepVersions)
        {
            var oldest = _versions.First();
            oldest.Value.Handle.Dispose();
            _versions.Remove(oldest.Key);
        }
        _log.Info("weights v{0} published: {1} bytes, sha256 {2}, {3} chunks", p.Version, size, sha, info.ChunkCount);
        foreach (var s in _subscribers) s.Tell(info);
        Sender.Tell(info);
    }

    void Serve(FetchWeightChunk f)
    {
        if (!_versions.TryGetValue(f.Version, out var e))
        {
            Sender.Tell(new WeightVersionGone(f.Version, _versions.Count > 0 ? _versions.Keys.Max() : 0));
            return;
        }
        var offset = (long)f.Index * _chunkSize;
        if (f.Index < 0 || offset >= e.Info.SizeBytes)
        {
            Sender.Tell(new Status.Failure(new ArgumentOutOfRangeException(nameof(f.Index), $"chunk {f.Index} is outside weights v{f.Version} ({e.Info.ChunkCount} chunks)")));
            return;
        }
        var buf = new byte[(int)Math.Min(_chunkSize, e.Info.SizeBytes - offset)];
        var read = 0;
        while (read < buf.Length) read += RandomAccess.Read(e.Handle.Handle, buf.AsSpan(read), offset + read);
        Sender.Tell(new WeightChunk(f.Version, f.Index, UnsafeByteOperations.UnsafeWrap(buf), Convert.ToHexStringLower(SHA256.HashData(buf))));
    }

    protected override void PostStop()
    {
        foreach (var e in _versions.Values) e.Handle.Dispose();
    }

    /// <summary>Read-only stream over a file handle that leaves the handle open.</summary>
    sealed class HandleStream(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long length) : Stream
    {
        long _pos;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _pos; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = RandomAccess.Read(handle, buffer.AsSpan(offset, count), _pos);
            _pos += n;
            return n;
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
