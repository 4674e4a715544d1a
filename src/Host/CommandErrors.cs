using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Scst.Host;

/// <summary>
/// The CLI's one error policy, applied around every command (<see cref="ScstCli"/>): an exception that is the user's
/// to fix (a missing, unreadable or malformed file, a bad config, a corrupt checkpoint or journal, a full disk, a port
/// in use, a bad certificate) prints one line naming the thing and what to do, exit code 2; anything else prints one
/// line saying where its full trace was written, exit code 1. Never a stack trace on the console.
/// </summary>
public static partial class CommandErrors
{
    public const int UserError = 2;
    public const int Unexpected = 1;

    /// <summary>
    /// The log file of the run the command is working on (RUN_DIR/logs/NAME.log), set once the command knows its run
    /// folder; traces go there. Without one they go to <see cref="FallbackLogDirectory"/>.
    /// </summary>
    public static string? RunLog { get; set; }

    /// <summary>Where traces go when the command has no run folder (or it cannot be written): $TMPDIR/scst-logs/.</summary>
    public static string FallbackLogDirectory => Path.Combine(Path.GetTempPath(), "scst-logs");

    /// <summary>Prints the one line for <paramref name="e"/> to stderr, records its trace, and returns the exit code.</summary>
    public static int Report(Exception e, string command, TextWriter? stderr = null)
    {
        stderr ??= Console.Error;
        var user = Describe(e);
        var trace = WriteTrace(e, command, user is null);
        if (user is not null)
        {
            stderr.WriteLine($"error: {user}");
            return UserError;
        }
        var root = Innermost(e);
        stderr.WriteLine($"error: unexpected {root.GetType().Name} in '{command}': {FirstLine(root.Message)}" +
                         (trace is null ? " (the trace could not be written anywhere)" : $" (full trace in {trace})"));
        return Unexpected;
    }

    /// <summary>The one line for a user error, or null when the exception is not one (a bug, or something unforeseen).</summary>
    public static string? Describe(Exception e)
    {
        e = Unwrap(e);
        return e switch
        {
            Configuration.ConfigException => e.Message, // file:line:column: 'key': message, one line per problem
            IOException io when IsDiskFull(io) => $"{FirstLine(io.Message)}. No space left on the disk: free space, then resume (train --resume, or start the same " +
                                                 "--role command again); the last checkpoint and the journal are intact",
            FileNotFoundException or DirectoryNotFoundException => WithHint(e.Message, "check the path"),
            UnauthorizedAccessException => WithHint(e.Message, "give a file this user can read"),
            PathTooLongException or EndOfStreamException or InvalidDataException => FirstLine(e.Message),
            IOException io when io.Message.Contains("file is too long", StringComparison.OrdinalIgnoreCase) =>
                $"{FirstLine(io.Message)} A file of 2 GB or more was read whole; split it (e.g. sharded safetensors with an index) or report which file it was",
            IOException => WithHint(e.Message, "check that the path is a readable file"),
            Commands.CocoFormatException or Model.Data.DatasetFormatException or Model.Data.MissingImagesException => FirstLine(e.Message),
            Actors.Persistence.JournalCorruptException or Actors.Persistence.JournalUnavailableException => FirstLine(e.Message),
            // run.max_nonfinite updates in a row: the run wrote its checkpoint and summary; the line says what to change.
            Training.NonfiniteUpdatesException => FirstLine(e.Message),
            Akka.Configuration.ConfigurationException => $"HOCON: {FirstLine(e.Message)}",
            CryptographicException => $"certificate: {FirstLine(e.Message)} (check --tls-cert, --tls-ca and the password variable)",
            HttpListenerException or SocketException => $"{FirstLine(e.Message)} (is the port in use? choose another)",
            System.Text.Json.JsonException => $"not valid JSON: {FirstLine(e.Message)}",
            NotSupportedException or ArgumentException and not ArgumentNullException => FirstLine(e.Message),
            // Our own code throws InvalidOperationException for states the user made (a run folder in use, no CUDA, ...);
            // one thrown from a library is a bug.
            InvalidOperationException when ThrownByScst(e) => FirstLine(e.Message),
            _ => null,
        };
    }

    /// <summary>ENOSPC and EDQUOT: what a full disk (or quota) reports on Linux, and ERROR_DISK_FULL on Windows.</summary>
    public static bool IsDiskFull(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            if (x is IOException && ((x.HResult & 0xFFFF) is 28 or 122 or 112 ||
                                     x.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase) ||
                                     x.Message.Contains("Disk quota exceeded", StringComparison.OrdinalIgnoreCase) ||
                                     x.Message.Contains("database or disk is full", StringComparison.OrdinalIgnoreCase)))
                return true;
        return false;
    }

    // Task and reflection wrappers carry the real exception inside.
    static Exception Unwrap(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case AggregateException { InnerExceptions.Count: 1 } a: e = a.InnerExceptions[0]; continue;
                case System.Reflection.TargetInvocationException { InnerException: { } i }: e = i; continue;
                case TypeInitializationException { InnerException: { } t }: e = t; continue;
            }
            // A wrapper of ours around a full disk keeps the file name in its message; the inner one decides the kind.
            return e;
        }
    }

    static Exception Innermost(Exception e)
    {
        e = Unwrap(e);
        return e is AggregateException { InnerExceptions.Count: > 0 } a ? a.InnerExceptions[0] : e;
    }

    static bool ThrownByScst(Exception e) =>
        e.TargetSite?.DeclaringType?.FullName?.StartsWith("Scst.", StringComparison.Ordinal) == true;

    /// <summary>
    /// The message with a hint. The OS says "access denied" for a directory read as a file and "already exists" or
    /// "could not find a part of the path" for a file used as a folder: a path in the message that is one of those says so.
    /// </summary>
    static string WithHint(string message, string hint)
    {
        var line = FirstLine(message);
        var quoted = QuotedPath().Match(line);
        if (!quoted.Success) return $"{line} ({hint})";
        var path = quoted.Groups["p"].Value;
        if (Directory.Exists(path) && !line.Contains("already exists", StringComparison.Ordinal))
            return $"'{path}' is a directory, expected a file ({line})";
        for (var p = path; !string.IsNullOrEmpty(p); p = Path.GetDirectoryName(p))
            if (File.Exists(p) && (p != path || line.Contains("already exists", StringComparison.Ordinal) || line.Contains("folder", StringComparison.Ordinal)))
                return $"'{p}' is a file, expected a folder ({line})";
        return $"{line} ({hint})";
    }

    static string FirstLine(string s)
    {
        var i = s.IndexOfAny(['\r', '\n']);
        return (i < 0 ? s : s[..i]).TrimEnd();
    }

    [GeneratedRegex("'(?<p>/[^']+|[A-Za-z]:\\\\[^']+)'")]
    private static partial Regex QuotedPath();

    /// <summary>Appends the trace to the run's log, or else to a new file under <see cref="FallbackLogDirectory"/>; the path, or null.</summary>
    static string? WriteTrace(Exception e, string command, bool unexpected)
    {
        var text = $"{DateTime.Now.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture)} {(unexpected ? "crit" : "fail")}  " +
                   $"{command}: {(unexpected ? "unexpected error" : "stopped by an error")}{Environment.NewLine}{e}{Environment.NewLine}";
        if (RunLog is { } log && TryAppend(log, text)) return log;
        // A user error's trace is worth keeping only beside its run; a full disk must not spray files elsewhere.
        if (!unexpected) return null;
        var file = Path.Combine(FallbackLogDirectory, $"{Sanitize(command)}-{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}-{Environment.ProcessId}.log");
        return TryAppend(file, text) ? file : null;
    }

    static bool TryAppend(string file, string text)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
            File.AppendAllText(file, text);
            return true;
        }
        catch (Exception x) when (x is IOException or UnauthorizedAccessException) { return false; }
    }

    static string Sanitize(string s) => string.Concat(s.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '-'));
}
