using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

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
/// Rollout side of the weight plane: streams an announced file over HTTP(S) into <c>policy-vN.safetensors.ID.partial</c>,
/// hashing each chunk (on the thread pool, while the next ones arrive) and refusing one whose SHA-256 differs from the
/// announcement; intact chunks are written, and in order feed the whole-file SHA-256 when that is asked for. A broken or
/// damaged transfer resumes with a Range request from the first unverified chunk, with backoff. Only an intact file
/// (every chunk and the whole file matched) is moved into place, so nothing reads the file again to check it.
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

    /// <summary>Fetches <paramref name="a"/> into <paramref name="dir"/>; returns the verified file's path.</summary>
    public async Task<string> DownloadAsync(WeightsAvailable a, string dir, CancellationToken ct)
    {
        if (a.Problem() is { } problem) throw new WeightFetchException($"malformed announcement of weights v{a.Version}: {problem}");
        Directory.CreateDirectory(dir);
        var final = Path.Combine(dir, $"policy-v{a.Version}.safetensors");
        // Its own name: a transfer being cancelled may still hold (and then delete) another one's partial file.
        var partial = $"{final}.{Guid.NewGuid().ToString("N")[..8]}.partial";
        try
        {
            using (var file = File.OpenHandle(partial, FileMode.Create, FileAccess.Write, FileShare.None, preallocationSize: a.SizeBytes))
            using (var fileHash = _settings.WholeFileSha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null)
            {
                var progress = new Progress();
                var failures = 0;
                while (progress.Verified < a.ChunkCount)
                {
                    var before = progress.Verified;
                    try { await FetchFrom(a, progress, file, fileHash, ct); }
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
            // No fsync: the file is rewritten every version and a crash only means fetching again (docs/cluster.md, measured costs).
            File.Move(partial, final, overwrite: true);
            return final;
        }
        catch
        {
            TryDelete(partial);
            throw;
        }
    }

    sealed class DamagedChunkException(int index) : Exception($"chunk {index} arrived damaged (SHA-256 differs from the announcement); refused");

    async Task FetchFrom(WeightsAvailable a, Progress progress, SafeFileHandle file, IncrementalHash? fileHash, CancellationToken ct)
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

        // Received chunks are checked and written on the thread pool, several at once, while the next ones arrive; they
        // are retired in order, so progress.Verified is always a prefix of intact chunks on disk (where a resume starts).
        var inFlight = new Queue<InFlight>();
        var workers = Math.Max(2, Environment.ProcessorCount);
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
                if (inFlight.Count >= workers) await RetireNext();
                var start = (long)i * a.ChunkSize;
                var length = (int)Math.Min(a.ChunkSize, a.SizeBytes - start);
                var buffer = ArrayPool<byte>.Shared.Rent(length);
                try
                {
                    for (var got = 0; got < length;)
                    {
                        stall.CancelAfter(stallAfter);
                        var n = await body.ReadAsync(buffer.AsMemory(got, length - got), stall.Token);
                        if (n == 0) throw new IOException($"the connection closed at byte {start + got} of {a.SizeBytes}");
                        got += n;
                    }
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }
                var index = i;
                inFlight.Enqueue(new InFlight(index, buffer, length, Task.Run(() => CheckAndWrite(a, index, buffer, length, file), CancellationToken.None)));
            }
            while (inFlight.Count > 0) await RetireNext();
        }
        finally
        {
            // After a failure (a broken connection, say) the chunks already received still count, up to the first bad one,
            // so the resume starts after them; the others' work ends before their buffers go back to the pool.
            while (inFlight.TryDequeue(out var f))
            {
                bool intact;
                try { intact = await f.Intact; }
                catch (Exception) { intact = false; } // the first failure is the one reported
                if (intact && prefix) Retire(f, progress, fileHash);
                else
                {
                    prefix = false;
                    ArrayPool<byte>.Shared.Return(f.Buffer);
                }
            }
        }
    }

    readonly record struct InFlight(int Index, byte[] Buffer, int Length, Task<bool> Intact);

    static bool CheckAndWrite(WeightsAvailable a, int index, byte[] buffer, int length, SafeFileHandle file)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(buffer.AsSpan(0, length), hash);
        if (!hash.SequenceEqual(a.ChunkHash(index))) return false;
        RandomAccess.Write(file, buffer.AsSpan(0, length), (long)index * a.ChunkSize);
        return true;
    }

    /// <summary>Waits for a chunk's check and write; its buffer goes back to the pool if that failed.</summary>
    async Task<InFlight> Done(InFlight f)
    {
        bool intact;
        try { intact = await f.Intact; }
        catch
        {
            ArrayPool<byte>.Shared.Return(f.Buffer);
            throw;
        }
        if (intact) return f;
        ArrayPool<byte>.Shared.Return(f.Buffer);
        Interlocked.Increment(ref _chunksRefused);
        throw new DamagedChunkException(f.Index);
    }

    /// <summary>An intact chunk, in order: into the whole-file hash, and the verified prefix grows.</summary>
    void Retire(InFlight f, Progress progress, IncrementalHash? fileHash)
    {
        try { fileHash?.AppendData(f.Buffer, 0, f.Length); }
        finally { ArrayPool<byte>.Shared.Return(f.Buffer); }
        progress.Verified = f.Index + 1;
        Interlocked.Increment(ref _chunksVerified);
    }

    TimeSpan StallAfter => _settings.StallTimeout ?? TimeSpan.FromSeconds(30);

    static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose() => _http.Dispose();
}
