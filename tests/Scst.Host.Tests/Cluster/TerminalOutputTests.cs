using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

/// <summary>
/// A short `train` as a person sees it: in a real terminal (tmux, 160 columns) and into a pipe. Log lines and progress
/// bars never share a screen line, and each finished evaluation appears once.
/// </summary>
[Trait("Category", "Process")]
public partial class TerminalOutputTests(ITestOutputHelper output)
{
    [GeneratedRegex(@"\d\d:\d\d:\d\d\.\d\d\d (info|warn|fail)  ")]
    private static partial Regex LogStart();

    static string TinyConfig(out string dir)
    {
        dir = TinyScstRun.NewDir("terminal");
        // 4 updates, validation at 2 and 4: evaluations are finished sub-tasks of the run.
        return TinyScstRun.WriteConfig(dir, maxIters: 4, checkpointEvery: 4, evalEvery: 2);
    }

    [SkippableFact]
    public async Task OnATerminalLogLinesStayAboveTheBarsAndEachEvaluationIsOneLine()
    {
        Skip.If(!File.Exists("/usr/bin/tmux"), "needs tmux for a real pseudo-terminal");
        var config = TinyConfig(out var dir);
        var session = "scst-term-" + Guid.NewGuid().ToString("N")[..8];
        var marker = Path.Combine(dir, "exit-code");
        var command = $"dotnet '{HostProcess.HostDll}' train --config '{config}' --run-dir '{Path.Combine(dir, "run")}'; echo $? > '{marker}'; sleep 60";
        Run("tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "50", command);
        try
        {
            var sw = Stopwatch.StartNew();
            while (!File.Exists(marker) && sw.Elapsed < TimeSpan.FromMinutes(4)) await Task.Delay(500);
            Assert.True(File.Exists(marker), "train did not finish within 4 minutes");
            await Task.Delay(300);
            var screen = Run("tmux", "capture-pane", "-p", "-t", session, "-S", "-").Split('\n');
            foreach (var l in screen.Where(l => l.Trim().Length > 0)) output.WriteLine(l);
            Assert.Equal("0", File.ReadAllText(marker).Trim());
            // No screen line holds a log line together with (or after) a bar, nor two log lines.
            Assert.DoesNotContain(screen, l => LogStart().IsMatch(l) && (l.Contains('━') || LogStart().Matches(l).Count > 1 || !LogStart().Match(l).Index.Equals(0)));
            AssertOneLinePerEvaluation(screen);
            Assert.DoesNotContain(screen, l => l.Contains("eval:val") && l.Contains('━'));
        }
        finally
        {
            try { Run("tmux", "kill-session", "-t", session); } catch (InvalidOperationException) { }
        }
    }

    [Fact]
    public async Task IntoAPipeProgressIsPlainLogLines()
    {
        var config = TinyConfig(out var dir);
        using var p = HostProcess.Start("train", "train", "--config", config, "--run-dir", Path.Combine(dir, "run"));
        await p.ExpectExit(0, TimeSpan.FromMinutes(4), "finish the run");
        var lines = p.Lines.ToList();
        foreach (var l in lines) output.WriteLine(l);
        Assert.DoesNotContain(lines, l => l.Contains('━') || l.Contains('\u001b'));
        AssertOneLinePerEvaluation(lines);
        Assert.Single(lines, l => l.Contains("train scst: done 4/4"));
        // The run's log file has every line the console showed, with the date.
        var file = File.ReadAllLines(Path.Combine(dir, "run", "logs", "train.log"));
        Assert.Contains(file, l => l.Contains("train scst: done 4/4"));
    }

    /// <summary>Validation at updates 2 and 4 (and once more at the end when the best checkpoint is not the last), test at the end.</summary>
    static void AssertOneLinePerEvaluation(IReadOnlyCollection<string> lines)
    {
        var validations = lines.Count(l => l.Contains(": val CIDEr"));
        Assert.Equal(2, validations);
        Assert.InRange(lines.Count(l => l.Contains("eval:val: done")), validations, validations + 1);
        Assert.Equal(1, lines.Count(l => l.Contains("eval:test: done")));
    }

    static string Run(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} {string.Join(" ", args)}: exit {p.ExitCode}: {p.StandardError.ReadToEnd()}");
        return text;
    }
}
