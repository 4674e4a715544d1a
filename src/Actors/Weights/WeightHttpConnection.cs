using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Scst.Actors.Weights;

/// <summary>
/// One connection to the <see cref="WeightServer"/>: the HTTP/1.1 it needs (GET, <c>Range: bytes=N-</c>, keep-alive)
/// on a thread of its own with blocking calls. Over plain HTTP the body goes from the file to the socket with
/// <c>sendfile(2)</c>, never through this process's memory: 0.23–0.30 CPU s per GB against Kestrel's 0.54–0.95, which
/// leaves a 2-core machine room to also receive and hash (docs/cluster.md). Over TLS it goes through an <see cref="SslStream"/>.
/// </summary>
sealed class WeightHttpConnection(WeightServer server, Socket socket, WeightPlaneTls? tls)
{
    const int MaxHead = 16 << 10;
    /// <summary>Bytes per sendfile call or per copied write: faults are checked between segments.</summary>
    const int Segment = 1 << 20;
    /// <summary>A peer that takes no bytes (or sends no request) for this long is dropped.</summary>
    static readonly TimeSpan Idle = TimeSpan.FromSeconds(60);

    Stream? _tls;
    readonly byte[] _head = new byte[MaxHead];
    int _headLength;

    public void Run()
    {
        try
        {
            socket.NoDelay = true;
            socket.SendTimeout = socket.ReceiveTimeout = (int)Idle.TotalMilliseconds;
            if (tls is not null && !Handshake(tls)) return;
            while (ReadRequest() is { } request && Respond(request)) { }
        }
        // A peer gone, refused or speaking something else ends this connection only: an exception escaping a thread of its
        // own would end the learner's process.
        catch (Exception) { }
        finally
        {
            _tls?.Dispose();
            server.Closed(socket);
        }
    }

    bool Handshake(WeightPlaneTls t)
    {
        var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
        _tls = ssl;
        try
        {
            ssl.AuthenticateAsServer(new SslServerAuthenticationOptions
            {
                ServerCertificate = t.Certificate,
                ClientCertificateRequired = true,
                RemoteCertificateValidationCallback = (_, cert, chain, errors) => t.Trusts(cert as X509Certificate2, chain, errors),
            });
            return true;
        }
        catch (System.Security.Authentication.AuthenticationException) { return false; } // not of this cluster: no request, no byte
    }

    sealed record Request(string Method, string Path, string? Range, bool Close);

    /// <summary>The next request's head, or null when the peer closed the connection between requests.</summary>
    Request? ReadRequest()
    {
        int end;
        while ((end = _head.AsSpan(0, _headLength).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (_headLength == MaxHead) throw new IOException("request head too large");
            var n = Receive(_head.AsSpan(_headLength));
            if (n == 0)
            {
                if (_headLength == 0) return null;
                throw new IOException("connection closed inside a request head");
            }
            _headLength += n;
        }
        var lines = Encoding.Latin1.GetString(_head, 0, end).Split("\r\n");
        // A GET carries no body; whatever follows the head is the next request (pipelining).
        var rest = _headLength - (end + 4);
        _head.AsSpan(end + 4, rest).CopyTo(_head);
        _headLength = rest;
        var parts = lines[0].Split(' ');
        if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal)) throw new IOException($"not an HTTP/1.x request line: '{lines[0]}'");
        string? range = null;
        var close = parts[2] == "HTTP/1.0";
        foreach (var line in lines.AsSpan(1))
        {
            var colon = line.IndexOf(':');
            if (colon <= 0) continue;
            var name = line.AsSpan(0, colon).Trim();
            var value = line[(colon + 1)..].Trim();
            if (name.Equals("Range", StringComparison.OrdinalIgnoreCase)) range = value;
            else if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase)) close = value.Equals("close", StringComparison.OrdinalIgnoreCase);
            // A body we will not read: answer, then close rather than parse it as the next request.
            else if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) && value != "0" || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)) close = true;
        }
        return new Request(parts[0], parts[1], range, close);
    }

    /// <summary>Answers one request; false: the connection ends.</summary>
    bool Respond(Request r)
    {
        server.CountRequest();
        if (r.Method != "GET" || !WeightServer.TryVersion(r.Path, out var version))
        {
            Head("404 Not Found", 0, null);
            return !r.Close;
        }
        if (!server.TryAcquire(version, out var entry))
        {
            // Not kept any more (or never published): the fetcher asks the publisher for the latest announcement.
            Head("404 Not Found", 0, $"X-Latest-Version: {server.Latest}\r\n");
            return !r.Close;
        }
        try
        {
            var size = entry.Info.SizeBytes;
            var start = 0L;
            if (r.Range is { } range)
            {
                if (!WeightServer.TryRangeStart(range, out start) || start >= size)
                {
                    Head("416 Range Not Satisfiable", 0, $"Content-Range: bytes */{size}\r\n");
                    return !r.Close;
                }
                Head("206 Partial Content", size - start, $"Content-Type: application/octet-stream\r\nContent-Range: bytes {start}-{size - 1}/{size}\r\n");
            }
            else Head("200 OK", size, "Content-Type: application/octet-stream\r\n");
            return Body(entry, start, size) && !r.Close;
        }
        finally { entry.Release(); }
    }

    void Head(string status, long length, string? headers) =>
        Send(Encoding.Latin1.GetBytes($"HTTP/1.1 {status}\r\nContent-Length: {length}\r\n{headers}\r\n"));

    /// <summary>Sends the file from <paramref name="start"/>; false when a fault broke the connection on purpose.</summary>
    bool Body(WeightServer.Entry entry, long start, long size)
    {
        var faults = server.Faults;
        var sent = 0L;
        byte[]? copy = null;
        for (var pos = start; pos < size;)
        {
            var n = (int)Math.Min(Segment, size - pos);
            if (faults.ShouldAbort(sent + n))
            {
                // Closed mid-body: what was sent still arrives (a reset would drop whatever the fetcher had not read yet,
                // and how much that is depends on timing), then the body ends short, as on a broken link.
                socket.Shutdown(SocketShutdown.Both);
                return false;
            }
            if (_tls is null && !faults.WouldDamage(pos, n) && OperatingSystem.IsLinux()) n = SendFile(entry.Handle, pos, n);
            else
            {
                // TLS (or a segment a test damages): through this process's memory.
                copy ??= new byte[Segment];
                n = RandomAccess.Read(entry.Handle, copy.AsSpan(0, n), pos);
                if (n == 0) throw new IOException($"weights v{entry.Info.Version}: file ended at {pos} of {size} bytes");
                faults.MaybeDamage(copy.AsSpan(0, n), pos);
                Send(copy.AsSpan(0, n));
            }
            pos += n;
            sent += n;
            server.CountBytes(n);
        }
        return true;
    }

    int Receive(Span<byte> into) => _tls is { } s ? s.Read(into) : socket.Receive(into);

    void Send(ReadOnlySpan<byte> bytes)
    {
        if (_tls is { } s) { s.Write(bytes); return; }
        while (bytes.Length > 0) bytes = bytes[socket.Send(bytes)..];
    }

    /// <summary>Up to <paramref name="count"/> bytes of the file at <paramref name="offset"/> straight to the socket; returns how many went.</summary>
    int SendFile(SafeFileHandle file, long offset, int count)
    {
        var added = false;
        socket.SafeHandle.DangerousAddRef(ref added);
        try
        {
            while (true)
            {
                var at = offset;
                var n = sendfile((int)socket.SafeHandle.DangerousGetHandle(), (int)file.DangerousGetHandle(), ref at, (nuint)count);
                if (n > 0) return (int)n;
                if (n == 0) throw new IOException($"weights file ended at {offset}");
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR) continue;
                // The send timeout ran out (or the socket is non-blocking): wait for room once more, then give up on the peer.
                if (errno == EAGAIN && socket.Poll(Idle, SelectMode.SelectWrite)) continue;
                throw new IOException($"sendfile to {socket.RemoteEndPoint} failed: errno {errno}");
            }
        }
        finally
        {
            if (added) socket.SafeHandle.DangerousRelease();
        }
    }

    const int EINTR = 4, EAGAIN = 11;

    [DllImport("libc", SetLastError = true)]
    static extern nint sendfile(int outFd, int inFd, ref long offset, nuint count);
}
