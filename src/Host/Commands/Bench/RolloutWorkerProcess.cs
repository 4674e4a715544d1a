using System.Diagnostics;
using Scst.Host.Cluster;

namespace Scst.Host.Commands.Bench;

/// <summary>
/// A rollout node started by <c>bench actors</c> on 127.0.0.1: this same program, <c>train --role rollout</c>, seeded
/// with the learner's address (it keeps trying to join until the learner is up), its output in a log file. Disposing
/// kills whatever is left of it.
/// </summary>
sealed class RolloutWorkerProcess : IDisposable
{
    readonly Process _p;
    readonly StreamWriter _log;

    public string LogFile { get; }

    RolloutWorkerProcess(Process p, StreamWriter log, string logFile) => (_p, _log, LogFile) = (p, log, logFile);

    /// <param name="learner">The learner node's options: the rollout node takes its HOCON and TLS files, as the command a waiting learner prints.</param>
    public static RolloutWorkerProcess Start(string learnerAddress, string configFile, string runDir, NodeOptions learner)
    {
        Directory.CreateDirectory(runDir);
        var (program, prefix) = RolloutCommandLine.Self();
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in prefix.Concat(RolloutCommandLine.Arguments(learnerAddress, learner, configFile, runDir, path => path)))
            psi.ArgumentList.Add(a);
        var logFile = Path.Combine(runDir, "node.log");
        var log = new StreamWriter(logFile) { AutoFlush = true };
        var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => Write(log, e.Data);
        p.ErrorDataReceived += (_, e) => Write(log, e.Data);
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return new RolloutWorkerProcess(p, log, logFile);
    }

    static void Write(StreamWriter log, string? line)
    {
        if (line is null) return;
        lock (log) log.WriteLine(line);
    }

    /// <summary>Waits for the node to leave after the run; false (and killed) if it is still there after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForExit(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { await _p.WaitForExitAsync(cts.Token); return _p.ExitCode == 0; }
        catch (OperationCanceledException) { Kill(); return false; }
    }

    void Kill()
    {
        if (!_p.HasExited) _p.Kill(entireProcessTree: true);
        _p.WaitForExit(10_000);
    }

    public void Dispose()
    {
        Kill();
        _p.Dispose();
        lock (_log) _log.Dispose();
    }

    /// <summary>A port free now on 127.0.0.1, for the learner.</summary>
    public static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        var port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public static string LearnerAddress(int port) => $"akka.tcp://{NodeOptions.SystemName}@127.0.0.1:{port}";
}
