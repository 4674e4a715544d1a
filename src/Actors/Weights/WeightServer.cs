using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace Scst.Actors.Weights;

/// <param name="BindHost">Address to listen on (the node's Akka hostname: 127.0.0.1 unless a --hocon file says otherwise).</param>
/// <param name="PublicHost">Host name fetchers use in the announced URL (the node's public hostname).</param>
/// <param name="Port">0 = any free port (scst.weights.port).</param>
/// <param name="KeepVersions">Published versions kept open, so a fetch in flight when a newer one lands still finishes.</param>
public sealed record WeightServerSettings(string BindHost, string PublicHost, int Port, int KeepVersions, WeightPlaneTls? Tls = null);

/// <summary>
/// The learner node's weight plane: an HTTP/1.1 server (HTTPS with required, CA-checked client certificates when the
/// cluster's TLS is on) that serves each published weight file at <c>/weights/vN</c>, with byte ranges so a broken fetch
/// resumes. Over plain HTTP the bytes go from the file to the socket with <c>sendfile(2)</c>
/// (<see cref="WeightHttpConnection"/>); a general web server (Kestrel, measured first) copied every byte through its
/// response pipe. <see cref="Add"/> hashes a file per chunk; the announcement carries the hashes, never bytes.
/// Each file is served from a handle held open, so the bytes stay the hashed ones even if the path is replaced.
/// </summary>
public sealed class WeightServer : IDisposable
{
    /// <summary>Bytes read from the file per hashing step.</summary>
    const int Segment = 1 << 20;

    internal sealed class Entry(WeightsAvailable info, SafeFileHandle handle)
    {
        int _refs = 1; // the server's own, released when the version is no longer kept
        public WeightsAvailable Info { get; } = info;
        public SafeFileHandle Handle { get; } = handle;

        public bool TryAcquire()
        {
            lock (this) { if (_refs == 0) return false; _refs++; return true; }
        }

        public void Release()
        {
            lock (this) { if (--_refs > 0) return; }
            Handle.Dispose();
        }
    }

    readonly Socket _listener;
    readonly WeightServerSettings _settings;
    readonly SortedDictionary<long, Entry> _versions = [];
    readonly HashSet<Socket> _connections = [];
    volatile bool _disposed;
    long _bytesServed, _requests, _accepted;

    /// <summary>Where fetchers reach this server, e.g. <c>https://10.0.0.1:43121</c>.</summary>
    public string BaseUrl { get; }
    public int Port { get; }
    public long BytesServed => Interlocked.Read(ref _bytesServed);
    /// <summary>Requests that reached the handler (an untrusted TLS client never does).</summary>
    public long Requests => Interlocked.Read(ref _requests);
    /// <summary>Connections accepted (a fetcher keeps one open between requests).</summary>
    public long Connections => Interlocked.Read(ref _accepted);
    /// <summary>Fault injection for tests: breaks or damages responses of the real server.</summary>
    public WeightServerFaults Faults { get; } = new();

    WeightServer(Socket listener, WeightServerSettings settings)
    {
        (_listener, _settings) = (listener, settings);
        Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var host = settings.PublicHost.Contains(':') ? $"[{settings.PublicHost}]" : settings.PublicHost;
        BaseUrl = $"{(settings.Tls is null ? "http" : "https")}://{host}:{Port}";
        new Thread(AcceptLoop) { IsBackground = true, Name = $"weight server :{Port}" }.Start();
    }

    /// <summary>Starts listening; a port in use or an unresolvable host is an <see cref="IOException"/> naming scst.weights.port.</summary>
    public static WeightServer Start(WeightServerSettings settings)
    {
        if (settings.KeepVersions < 1) throw new ArgumentException($"scst.weights.keep-versions {settings.KeepVersions} must be >= 1");
        var address = BindAddress(settings.BindHost);
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(address, settings.Port));
            listener.Listen(64);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new IOException($"scst.weights.port: cannot listen on {settings.BindHost}:{settings.Port} for the weight plane: {e.Message}", e);
        }
        return new WeightServer(listener, settings);
    }

    /// <summary>Blocking accepts, one thread per connection: a weight server has a few fetchers at a time, each a long transfer.</summary>
    void AcceptLoop()
    {
        while (!_disposed)
        {
            Socket socket;
            try { socket = _listener.Accept(); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                if (_disposed) return;
                continue;
            }
            Interlocked.Increment(ref _accepted);
            lock (_connections)
            {
                if (_disposed) { socket.Dispose(); return; }
                _connections.Add(socket);
            }
            var connection = new WeightHttpConnection(this, socket, _settings.Tls);
            new Thread(connection.Run) { IsBackground = true, Name = "weight server connection" }.Start();
        }
    }

    internal void Closed(Socket socket)
    {
        lock (_connections) _connections.Remove(socket);
        socket.Dispose();
    }

    internal void CountRequest() => Interlocked.Increment(ref _requests);
    internal void CountBytes(long n) => Interlocked.Add(ref _bytesServed, n);

    internal bool TryAcquire(long version, out Entry entry)
    {
        Entry? e;
        lock (_versions) e = _versions.GetValueOrDefault(version);
        entry = e!;
        return e is not null && e.TryAcquire();
    }

    static IPAddress BindAddress(string host)
    {
        if (IPAddress.TryParse(host, out var ip)) return ip;
        if (host == "localhost") return IPAddress.Loopback;
        try { return Dns.GetHostAddresses(host).First(); }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or InvalidOperationException)
        {
            throw new IOException($"weight plane: cannot resolve the node's hostname '{host}' to listen on: {e.Message}", e);
        }
    }

    /// <summary>
    /// Serves <paramref name="path"/> (a complete file) as <paramref name="version"/>: hashes it per chunk (and whole,
    /// unless <paramref name="sha256"/> is already known from writing it) and returns the announcement. Versions beyond
    /// the newest <see cref="WeightServerSettings.KeepVersions"/> stop being served once their last fetch ends.
    /// </summary>
    public WeightsAvailable Add(long version, string path, string? sha256 = null)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        try
        {
            var size = RandomAccess.GetLength(handle);
            var chunk = WeightsAvailable.ChunkSizeFor(size);
            var (chunkHashes, fileSha) = Hash(handle, size, chunk, wholeFile: sha256 is null);
            var info = new WeightsAvailable(version, sha256 ?? fileSha!, size, chunk, $"{BaseUrl}/weights/v{version}", chunkHashes);
            lock (_versions)
            {
                if (_versions.Count > 0 && version <= _versions.Keys.Max())
                    throw new ArgumentException($"weights version {version} is not newer than the published {_versions.Keys.Max()}");
                _versions[version] = new Entry(info, handle);
                while (_versions.Count > _settings.KeepVersions)
                {
                    var oldest = _versions.First();
                    _versions.Remove(oldest.Key);
                    oldest.Value.Release();
                }
            }
            return info;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    static (byte[] ChunkHashes, string? FileSha) Hash(SafeFileHandle handle, long size, int chunkSize, bool wholeFile)
    {
        var count = (int)((size + chunkSize - 1) / chunkSize);
        var hashes = new byte[count * 32];
        using var chunkHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var fileHash = wholeFile ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        var buf = ArrayPool<byte>.Shared.Rent(Segment);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var start = (long)i * chunkSize;
                var end = Math.Min(size, start + chunkSize);
                for (var pos = start; pos < end;)
                {
                    var n = RandomAccess.Read(handle, buf.AsSpan(0, (int)Math.Min(Segment, end - pos)), pos);
                    if (n == 0) throw new IOException($"weights file ended at {pos} of {size} bytes while being hashed");
                    chunkHash.AppendData(buf, 0, n);
                    fileHash?.AppendData(buf, 0, n);
                    pos += n;
                }
                chunkHash.GetHashAndReset(hashes.AsSpan(i * 32, 32));
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buf); }
        return (hashes, fileHash is null ? null : Convert.ToHexStringLower(fileHash.GetHashAndReset()));
    }

    /// <summary>The newest version served, or -1.</summary>
    public long Latest
    {
        get { lock (_versions) return _versions.Count > 0 ? _versions.Keys.Max() : -1; }
    }

    internal static bool TryVersion(string? path, out long version)
    {
        version = 0;
        const string prefix = "/weights/v";
        return path is not null && path.StartsWith(prefix, StringComparison.Ordinal)
               && long.TryParse(path.AsSpan(prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out version);
    }

    /// <summary>The start of <c>bytes=N-</c> (or <c>bytes=N-M</c>, served to the end as a fetcher wants the rest).</summary>
    internal static bool TryRangeStart(string header, out long start)
    {
        start = 0;
        if (!header.StartsWith("bytes=", StringComparison.Ordinal) || header.Contains(',')) return false;
        var spec = header.AsSpan("bytes=".Length);
        var dash = spec.IndexOf('-');
        return dash > 0 && long.TryParse(spec[..dash], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out start);
    }

    public void Dispose()
    {
        _disposed = true;
        _listener.Dispose();
        lock (_connections)
        {
            // A shutdown ends blocked receives and sendfile calls (closing alone does not interrupt a call in progress).
            foreach (var c in _connections)
            {
                try { c.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
                c.Dispose();
            }
            _connections.Clear();
        }
        lock (_versions)
        {
            foreach (var e in _versions.Values) e.Release();
            _versions.Clear();
        }
    }
}

/// <summary>Faults the real server injects into its responses, for the tests of resume and verification.</summary>
public sealed class WeightServerFaults
{
    long _abortAfter = -1, _damageAt = -1;
    int _aborts, _damages;

    /// <summary>The next <paramref name="times"/> responses close the connection after about <paramref name="bytes"/> bytes of body.</summary>
    public void DropConnectionAfter(long bytes, int times) => (_abortAfter, _aborts) = (bytes, times);

    /// <summary>The next <paramref name="times"/> responses that carry file byte <paramref name="offset"/> send it altered.</summary>
    public void DamageByte(long offset, int times) => (_damageAt, _damages) = (offset, times);

    internal bool ShouldAbort(long sentAfterThis) =>
        _abortAfter >= 0 && sentAfterThis > _abortAfter && Interlocked.Decrement(ref _aborts) >= 0;

    internal bool WouldDamage(long fileOffset, int length) =>
        _damageAt >= fileOffset && _damageAt < fileOffset + length && Volatile.Read(ref _damages) > 0;

    internal void MaybeDamage(Span<byte> data, long fileOffset)
    {
        var at = _damageAt - fileOffset;
        if (_damageAt < 0 || at < 0 || at >= data.Length || Interlocked.Decrement(ref _damages) < 0) return;
        data[(int)at] ^= 0x5A;
    }
}
