using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Scst.Host.Reporting;

/// <summary>
/// The process's one way to the terminal for log lines. While a live progress display runs, a line goes through
/// Spectre (whose live renderer moves the cursor above the live area, writes the line, then redraws the area), so a
/// log line never lands on a progress bar's screen line; otherwise it is a plain line on stdout.
/// </summary>
public static class ConsoleOutput
{
    static readonly object Gate = new();
    static int _live;

    /// <summary>A terminal that can redraw (not a pipe, file or dumb terminal): live progress; otherwise plain progress lines.</summary>
    public static bool IsTerminal =>
        !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Ansi && AnsiConsole.Profile.Capabilities.Interactive
        && Environment.GetEnvironmentVariable("TERM") is not "dumb";

    /// <summary>True while a live display owns the bottom of the screen.</summary>
    public static bool LiveActive => Volatile.Read(ref _live) > 0;

    public static void WriteLogLine(string line, LogLevel level)
    {
        if (LiveActive)
        {
            var style = level >= LogLevel.Error ? new Style(Color.Red) : level == LogLevel.Warning ? new Style(Color.Yellow) : Style.Plain;
            AnsiConsole.Write(new Text(line + Environment.NewLine, style));
            return;
        }
        lock (Gate) Console.Out.WriteLine(line);
    }

    /// <summary>Marks a live display as running until the returned handle is disposed.</summary>
    public static IDisposable EnterLive()
    {
        Interlocked.Increment(ref _live);
        return new Exit();
    }

    sealed class Exit : IDisposable
    {
        int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) Interlocked.Decrement(ref _live);
        }
    }
}
