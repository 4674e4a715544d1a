using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Scst.Host.Tests.Cluster;

/// <summary>
/// A real `dotnet Scst.Host.dll ...` process for chaos tests: captures its output lines, waits for a line,
/// and can be killed with SIGKILL (whole tree) or stopped with SIGTERM. Disposing kills whatever is left.
/// </summary>
public sealed class HostProcess : IDisposable
{
    readonly Process _p;
    readonly ConcurrentQueue<string> _lines = new();
    readonly string _name;

    public int Pid => _p.Id;
    public IEnumerable<string> Lines => _lines;

    HostProcess(string name, Process p) { _name = name; _p = p; }

    /// <summary>Scst.Host.dll beside the test assembly (the project reference copies it with its runtimeconfig).</summary>
    public static string HostDll => Path.Combine(AppContext.BaseDirectory, "Scst.Host.dll");

    public static HostProcess Start(string name, params string[] args) => StartWithEnvironment(name, new Dictionary<string, string>(), args);

    /// <summary>As <see cref="Start"/>, with extra environment variables for the child (e.g. a certificate password).</summary>
    public static HostProcess StartWithEnvironment(string name, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        psi.ArgumentList.Add(HostDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var hp = new HostProcess(name, p);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) hp._lines.Enqueue(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) hp._lines.Enqueue(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return hp;
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public async Task<string> WaitForLine(Func<string, bool> match, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            var hit = _lines.FirstOrDefault(match);
            if (hit is not null) return hit;
            if (_p.HasExited)
            {
                // The parameterless wait also drains the redirected output still in flight.
                _p.WaitForExit();
                hit = _lines.FirstOrDefault(match);
                if (hit is not null) return hit;
                break;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"{_name} (pid {_p.Id}{(_p.HasExited ? $", exited {_p.ExitCode}" : "")}) never logged {what} within {timeout.TotalSeconds:F0}s. Last lines:\n" +
                                   string.Join("\n", _lines.TakeLast(25)));
    }

    /// <summary>SIGKILL the process and its children: no shutdown hooks, no cluster leave, as in a crash.</summary>
    public void Kill9()
    {
        if (!_p.HasExited) _p.Kill(entireProcessTree: true);
        _p.WaitForExit(10_000);
    }

    /// <summary>SIGTERM: the generic host shuts the node down gracefully.</summary>
    public bool Terminate(TimeSpan timeout)
    {
        if (_p.HasExited) return true;
        Process.Start("kill", ["-TERM", _p.Id.ToString()]).WaitForExit();
        return _p.WaitForExit(timeout);
    }

    public int ExitCode => _p.ExitCode;

    public bool HasExited => _p.HasExited;

    /// <summary>Waits for the process to end by itself (and for its redirected output to drain).</summary>
    public async Task<int> WaitForExit(TimeSpan timeout, string what)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { await _p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{_name} (pid {_p.Id}) did not {what} within {timeout.TotalSeconds:F0}s. Last lines:\n" + string.Join("\n", _lines.TakeLast(25)));
        }
        return _p.ExitCode;
    }

    /// <summary>Waits for the process to end and fails with its last output lines unless it exited with <paramref name="expected"/>.</summary>
    public async Task ExpectExit(int expected, TimeSpan timeout, string what)
    {
        var code = await WaitForExit(timeout, what);
        if (code != expected)
            throw new Xunit.Sdk.XunitException($"{_name} exited with {code}, expected {expected} ({what}). Last lines:\n" + string.Join("\n", _lines.Where(l => !l.TrimStart().StartsWith("at ", StringComparison.Ordinal)).TakeLast(30)));
    }

    public void Dispose()
    {
        try { Kill9(); } catch (InvalidOperationException) { }
        _p.Dispose();
    }
}
