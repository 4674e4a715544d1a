using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Scst.Model.SafeTensors;

namespace Scst.Actors.Weights;

/// <param name="MaxAttempts">Tries in a row without a newly verified chunk before the fetch is reported failed (scst.weights.max-fetch-attempts).</param>
/// <param name="Tls">The cluster's certificate and CA when its TLS is on: the client certificate, and the only CA the server may chain to.</param>
/// <param name="StallTimeout">A connection that delivers nothing for this long is dropped and the fetch resumed.</param>
/// <param name="WholeFileSha256">Also hash the whole file as it streams and compare it with the announced SHA-256
/// (scst.weights.verify-whole-file). Each chunk's SHA-256 already covers every byte; this hashes every byte a second time.</param>
public sealed record WeightFetcherSettings(int MaxAttempts, WeightPlaneTls? Tls = null, TimeSpan? StallTimeout = null, bool WholeFileSha256 = false);

/// <summary>The server no longer keeps the version (a newer one replaced it); fetch the latest announcement instead.</summary>
public sealed class WeightVersionGoneException(long version) : Exception($"weights v{version} is no longer served (a newer version replaced it)")
{
    public long Version { get; } = version;
}

/// <summary>A fetch that could not complete intact after every attempt; the message says why.</summary>
public sealed class WeightFetchException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Rollout side of the weight plane: streams an announced file over HTTP(S) straight into a <see cref="SegmentedBuffer"/>
/// in memory (one segment per chunk; nothing is written to disk or read back), hashing each chunk where it lies (on the
/// thread pool, while the next ones arrive) and refusing one whose SHA-256 differs from the announcement; intact chunks
/// in order feed the whole-file SHA-256 when that is asked for. A broken or damaged transfer resumes with a Range request
/// from the first unverified chunk, with backoff. The download returns only when every chunk (and the whole file) matched.
/// </summary>
public sealed class WeightDownloader : IDisposable
{
    readonly HttpClient _http;
    readonly WeightFetcherSettings _settings;
    readonly Action<string>? _warn;
    long _chunksVerified, _chunksRefused, _resumes;

    public long ChunksVerified => Interlocked.Read(ref _chunksVerified);
    public long ChunksRefused => Interlocked.Read(ref _chunksRefused);
    /// <summary>Range requests sent after a broken or damaged transfer.</summary>
    public long Resumes => Interlocked.Read(ref _resumes);

    public WeightDownloader(WeightFetcherSettings settings, Action<string>? warn = null)
    {
        if (settings.MaxAttempts < 1) throw new ArgumentException($"scst.weights.max-fetch-attempts {settings.MaxAttempts} must be >= 1");
        (_settings, _warn) = (settings, warn);
        var handler = new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None, UseProxy = false, UseCookies = false };
        if (settings.Tls is { } tls)
        {
            handler.SslOptions.ClientCertificates = [tls.Certificate];
            handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => tls.Certificate;
            handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, chain, errors) =>
                tls.Trusts(cert as System.Security.Cryptography.X509Certificates.X509Certificate2, chain, errors);
        }
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    sealed class Progress
    {
        public int Verified;
    }

    /// <summary>Fetches <paramref name="a"/> into <paramref name="into"/> (resized to the announced size; its previous
    /// contents are overwritten). When it returns, every chunk's SHA-256 matched the announcement.</summary>
    public async Task DownloadAsync(WeightsAvailable a, SegmentedBuffer into, CancellationToken ct)
    {
        if (a.Problem() is { } problem) throw new WeightFetchException($"malformed announcement of weights v{a.Version}: {problem}");
        into.Reset(a.SizeBytes, a.ChunkSize);
        using var fileHash = _settings.WholeFileSha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        var progress = new Progress();
        var failures = 0;
        while (progress.Verified < a.ChunkCount)
        {
            var before = progress.Verified;
            try { await FetchFrom(a, progress, into, fileHash, ct); }
            // A cancellation that is not the caller's is the stall timer's: like a broken connection.
            catch (Exception e) when (!ct.IsCancellationRequested && e is HttpRequestException or IOException or DamagedChunkException or OperationCanceledException)
            {
                var why = e is OperationCanceledException ? $"no bytes for {StallAfter.TotalSeconds:F0} s" : e.Message;
                failures = progress.Verified > before ? 1 : failures + 1;
                if (failures >= _settings.MaxAttempts)
                    throw new WeightFetchException($"weights v{a.Version}: {failures} attempts in a row made no progress at chunk {progress.Verified}/{a.ChunkCount}: {why}", e);
                var wait = TimeSpan.FromMilliseconds(Math.Min(5000, 100 * (1 << Math.Min(failures, 6))));
                _warn?.Invoke($"weights v{a.Version}: {why}; resuming at chunk {progress.Verified}/{a.ChunkCount} in {wait.TotalMilliseconds:F0} ms (attempt {failures + 1} of {_settings.MaxAttempts})");
                await Task.Delay(wait, ct);
                Interlocked.Increment(ref _resumes);
            }
        }
        var sha = fileHash is null ? a.Sha256 : Convert.ToHexStringLower(fileHash.GetHashAndReset());
        // Every chunk matched its announced hash, so a different whole-file hash means the announcement itself is inconsistent.
        if (sha != a.Sha256) throw new WeightFetchException($"weights v{a.Version}: whole-file SHA-256 {sha} != announced {a.Sha256} although every chunk matched");
    }

    sealed class DamagedChunkException(int index) : Exception($"chunk {index} arrived damaged (SHA-256 differs from the announcement); refused");

    async Task FetchFrom(WeightsAvailable a, Progress progress, SegmentedBuffer into, IncrementalHash? fileHash, CancellationToken ct)
    {
        var offset = (long)progress.Verified * a.ChunkSize;
        using var request = new HttpRequestMessage(HttpMethod.Get, a.Url) { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        if (offset > 0) request.Headers.Range = new RangeHeaderValue(offset, null);
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var stallAfter = StallAfter;
        stall.CancelAfter(stallAfter);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stall.Token);
        if (response.StatusCode == HttpStatusCode.NotFound) throw new WeightVersionGoneException(a.Version);
        var expected = offset > 0 ? HttpStatusCode.PartialContent : HttpStatusCode.OK;
        if (response.StatusCode != expected || (offset > 0 && response.Content.Headers.ContentRange?.From != offset))
            throw new HttpRequestException($"{a.Url} answered {(int)response.StatusCode} {response.ReasonPhrase} to a request from byte {offset}");
        await using var body = await response.Content.ReadAsStreamAsync(ct);

        // Each chunk is received straight into its segment and hashed there on the thread pool, several at once, while
        // the next ones arrive; they are retired in order, so progress.Verified is always a prefix of intact chunks (where a
        // resume starts). A chunk after the prefix is simply received again: its segment is overwritten.
        var inFlight = new Queue<InFlight>();
        var prefix = true; // false once a chunk failed: the ones after it no longer extend the verified prefix
        async Task RetireNext()
        {
            try { Retire(await Done(inFlight.Dequeue()), progress, fileHash); }
            catch
            {
                prefix = false;
                throw;
            }
        }
        try
        {
            for (var i = progress.Verified; i < a.ChunkCount; i++)
            {
                if (inFlight.Count >= MaxChunksInFlight) await RetireNext();
                var segment = into.Segment(i);
                for (var got = 0; got < segment.Length;)
                {
                    stall.CancelAfter(stallAfter);
                    var n = await body.ReadAsync(segment[got..], stall.Token);
                    if (n == 0) throw new IOException($"the connection closed at byte {(long)i * a.ChunkSize + got} of {a.SizeBytes}");
                    got += n;
                }
                var index = i;
                inFlight.Enqueue(new InFlight(index, segment, Task.Run(() => Check(a, index, segment.Span), CancellationToken.None)));
            }
            while (inFlight.Count > 0) await RetireNext();
        }
        finally
        {
            // After a failure (a broken connection, say) the chunks already received still count, up to the first bad one,
            // so the resume starts after them; the others' checks end before their segments are received into again.
            while (inFlight.TryDequeue(out var f))
            {
                bool intact;
                try { intact = await f.Intact; }
                catch (Exception) { intact = false; } // the first failure is the one reported
                if (intact && prefix) Retire(f, progress, fileHash);
                else prefix = false;
            }
        }
    }

    /// <summary>
    /// How far receiving may run ahead of verification. Chunks are hashed where they lie, so this costs no memory; a wide
    /// window lets hashes run on every core while the receiver waits for bytes, and absorbs a neighbour taking a core for
    /// a while (16 against 2 chunks: 772–855 against 706–708 MB/s at 430 MB on 2 loaded cores, docs/cluster.md).
    /// </summary>
    const int MaxChunksInFlight = 16;

    readonly record struct InFlight(int Index, Memory<byte> Bytes, Task<bool> Intact);

    static bool Check(WeightsAvailable a, int index, ReadOnlySpan<byte> chunk)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(chunk, hash);
        return hash.SequenceEqual(a.ChunkHash(index));
    }

    /// <summary>Waits for a chunk's check; a damaged chunk is counted and ends this request.</summary>
    async Task<InFlight> Done(InFlight f)
    {
        if (await f.Intact) return f;
        Interlocked.Increment(ref _chunksRefused);
        throw new DamagedChunkException(f.Index);
    }

    /// <summary>An intact chunk, in order: into the whole-file hash, and the verified prefix grows.</summary>
    void Retire(InFlight f, Progress progress, IncrementalHash? fileHash)
    {
        fileHash?.AppendData(f.Bytes.Span);
        progress.Verified = f.Index + 1;
        Interlocked.Increment(ref _chunksVerified);
    }

    TimeSpan StallAfter => _settings.StallTimeout ?? TimeSpan.FromSeconds(30);

    public void Dispose() => _http.Dispose();
}
