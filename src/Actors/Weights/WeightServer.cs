using System.Buffers;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Win32.SafeHandles;

namespace Scst.Actors.Weights;

/// <param name="BindHost">Address to listen on (the node's Akka hostname: 127.0.0.1 unless a --hocon file says otherwise).</param>
/// <param name="PublicHost">Host name fetchers use in the announced URL (the node's public hostname).</param>
/// <param name="Port">0 = any free port (scst.weights.port).</param>
/// <param name="KeepVersions">Published versions kept open, so a fetch in flight when a newer one lands still finishes.</param>
public sealed record WeightServerSettings(string BindHost, string PublicHost, int Port, int KeepVersions, WeightPlaneTls? Tls = null);

/// <summary>
/// The learner node's weight plane: an HTTP/1.1 server (Kestrel; HTTPS with required, CA-checked client certificates
/// when the cluster's TLS is on) that serves each published weight file at <c>/weights/vN</c>, with byte ranges so a
/// broken fetch resumes. <see cref="Add"/> hashes a file per chunk; the announcement carries the hashes, never bytes.
/// Each file is served from a handle held open, so the bytes stay the hashed ones even if the path is replaced.
/// </summary>
public sealed class WeightServer : IDisposable
{
    /// <summary>Bytes read from the file per write to the connection.</summary>
    const int Segment = 1 << 20;

    sealed class Entry(WeightsAvailable info, SafeFileHandle handle)
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

    readonly WebApplication _app;
    readonly WeightServerSettings _settings;
    readonly SortedDictionary<long, Entry> _versions = [];
    long _bytesServed, _requests;

    /// <summary>Where fetchers reach this server, e.g. <c>https://10.0.0.1:43121</c>.</summary>
    public string BaseUrl { get; }
    public int Port { get; }
    public long BytesServed => Interlocked.Read(ref _bytesServed);
    /// <summary>Requests that reached the handler (an untrusted TLS client never does).</summary>
    public long Requests => Interlocked.Read(ref _requests);
    /// <summary>Fault injection for tests: breaks or damages responses of the real server.</summary>
    public WeightServerFaults Faults { get; } = new();

    WeightServer(WebApplication app, WeightServerSettings settings, int port)
    {
        (_app, _settings, Port) = (app, settings, port);
        var host = settings.PublicHost.Contains(':') ? $"[{settings.PublicHost}]" : settings.PublicHost;
        BaseUrl = $"{(settings.Tls is null ? "http" : "https")}://{host}:{port}";
    }

    /// <summary>Starts listening; a port in use or an unresolvable host is an <see cref="IOException"/> naming scst.weights.port.</summary>
    public static WeightServer Start(WeightServerSettings settings)
    {
        if (settings.KeepVersions < 1) throw new ArgumentException($"scst.weights.keep-versions {settings.KeepVersions} must be >= 1");
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MinResponseDataRate = null; // a slow replica is the fetcher's to time out, not the server's
            k.Listen(BindAddress(settings.BindHost), settings.Port, listen =>
            {
                // HTTP/1.1: one stream per fetch, no flow-control windows between the file and the socket.
                listen.Protocols = HttpProtocols.Http1;
                if (settings.Tls is { } tls)
                    listen.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = tls.Certificate,
                        ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                        ClientCertificateValidation = (cert, chain, errors) => tls.Trusts(cert, chain, errors),
                    });
            });
        });
        var app = builder.Build();
        WeightServer? server = null;
        app.Run(ctx =>
        {
            if (Volatile.Read(ref server) is { } s) return s.Serve(ctx);
            ctx.Response.StatusCode = StatusCodes.Status503ServiceUnavailable; // listening, not yet told its own port
            return Task.CompletedTask;
        });
        try { app.StartAsync().GetAwaiter().GetResult(); }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            ((IDisposable)app).Dispose();
            throw new IOException($"scst.weights.port: cannot listen on {settings.BindHost}:{settings.Port} for the weight plane: {e.Message}", e);
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var started = new WeightServer(app, settings, new Uri(address).Port);
        Volatile.Write(ref server, started);
        return started;
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

    async Task Serve(HttpContext ctx)
    {
        Interlocked.Increment(ref _requests);
        var res = ctx.Response;
        if (!HttpMethods.IsGet(ctx.Request.Method) || !TryVersion(ctx.Request.Path.Value, out var version))
        {
            res.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        Entry? entry;
        lock (_versions) entry = _versions.GetValueOrDefault(version);
        if (entry is null || !entry.TryAcquire())
        {
            // Not kept any more (or never published): the fetcher asks the publisher for the latest announcement.
            res.StatusCode = StatusCodes.Status404NotFound;
            res.Headers["X-Latest-Version"] = Latest.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return;
        }
        try
        {
            var size = entry.Info.SizeBytes;
            var start = 0L;
            if (ctx.Request.Headers.Range.Count > 0)
            {
                if (!TryRangeStart(ctx.Request.Headers.Range.ToString(), out start) || start >= size)
                {
                    res.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
                    res.Headers.ContentRange = $"bytes */{size}";
                    return;
                }
                res.StatusCode = StatusCodes.Status206PartialContent;
                res.Headers.ContentRange = $"bytes {start}-{size - 1}/{size}";
            }
            res.ContentType = "application/octet-stream";
            res.ContentLength = size - start;
            await Copy(ctx, entry, start, size);
        }
        finally { entry.Release(); }
    }

    async Task Copy(HttpContext ctx, Entry entry, long start, long size)
    {
        var body = ctx.Response.BodyWriter;
        var faults = Faults;
        var sent = 0L;
        for (var pos = start; pos < size;)
        {
            // Read straight into the response pipe's memory: one copy from the page cache, one into the socket (or TLS).
            var mem = body.GetMemory(Segment);
            var want = (int)Math.Min(mem.Length, size - pos);
            var n = RandomAccess.Read(entry.Handle, mem.Span[..want], pos);
            if (n == 0) throw new IOException($"weights v{entry.Info.Version}: file ended at {pos} of {size} bytes");
            if (faults.ShouldAbort(sent + n))
            {
                ctx.Abort();
                return;
            }
            faults.MaybeDamage(mem.Span[..n], pos);
            body.Advance(n);
            pos += n;
            sent += n;
            Interlocked.Add(ref _bytesServed, n);
            var flushed = await body.FlushAsync(ctx.RequestAborted);
            if (flushed.IsCanceled || flushed.IsCompleted) return;
        }
    }

    static bool TryVersion(string? path, out long version)
    {
        version = 0;
        const string prefix = "/weights/v";
        return path is not null && path.StartsWith(prefix, StringComparison.Ordinal)
               && long.TryParse(path.AsSpan(prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out version);
    }

    /// <summary>The start of <c>bytes=N-</c> (or <c>bytes=N-M</c>, served to the end as a fetcher wants the rest).</summary>
    static bool TryRangeStart(string header, out long start)
    {
        start = 0;
        if (!header.StartsWith("bytes=", StringComparison.Ordinal) || header.Contains(',')) return false;
        var spec = header.AsSpan("bytes=".Length);
        var dash = spec.IndexOf('-');
        return dash > 0 && long.TryParse(spec[..dash], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out start);
    }

    public void Dispose()
    {
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2))) _app.StopAsync(stop.Token).GetAwaiter().GetResult();
        ((IDisposable)_app).Dispose();
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

    internal void MaybeDamage(Span<byte> data, long fileOffset)
    {
        var at = _damageAt - fileOffset;
        if (_damageAt < 0 || at < 0 || at >= data.Length || Interlocked.Decrement(ref _damages) < 0) return;
        data[(int)at] ^= 0x5A;
    }
}
