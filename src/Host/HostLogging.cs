using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Scst.Host.Cluster;
using Scst.Host.Reporting;

using Scst.Actors.Pipeline;

namespace Scst.Host;

/// <summary>
/// One log format for the whole process (our code and, through Akka.Hosting's bridge, Akka's own logs):
/// <c>HH:mm:ss.fff info  learner: message</c> — the time and level once, a short source, the message. On the console,
/// Akka's internal lines (anything not from our own actors under /user) show from Warning up unless
/// <see cref="Verbose"/>; the run's log file keeps every line at Information and up (Debug with --verbose).
/// </summary>
public static partial class HostLogging
{
    /// <summary>Set once from --verbose (or SCST_VERBOSE=1) before any logger is made.</summary>
    public static bool Verbose { get; set; } = Environment.GetEnvironmentVariable("SCST_VERBOSE") is "1" or "true";

    public static ILoggerFactory Create(LogLevel minimum = LogLevel.Information, string? logFile = null) =>
        LoggerFactory.Create(b => Configure(b, logFile, minimum));

    /// <summary>Our console (and file, when given) providers on a logging builder; clears whatever was there.</summary>
    public static void Configure(ILoggingBuilder b, string? logFile, LogLevel minimum = LogLevel.Information)
    {
        var fromEnv = Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("SCST_LOG_LEVEL"), true, out var l) ? l : (LogLevel?)null;
        var min = fromEnv ?? (Verbose ? LogLevel.Debug : minimum);
        b.ClearProviders();
        b.SetMinimumLevel(min);
        b.AddProvider(new LineLoggerProvider(new ConsoleSink(min, Verbose)));
        if (logFile is not null) b.AddProvider(new LineLoggerProvider(new FileSink(logFile)));
    }

    /// <summary>The log file of a command that writes into a run folder: RUN_DIR/logs/NAME.log.</summary>
    public static string RunLogFile(string runDir, string name) =>
        Path.Combine(runDir, "logs", string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '-')) + ".log");

    /// <summary>One formatted line (no newline): the console's shape; the file adds the date.</summary>
    public static string FormatLine(DateTime time, LogLevel level, string source, string message, bool withDate = false)
    {
        var t = time.ToString(withDate ? "yyyy-MM-dd HH:mm:ss.fff" : "HH:mm:ss.fff", CultureInfo.InvariantCulture);
        // Messages that already start with their source ("learner: ...") keep it once.
        var body = message.StartsWith(source + ":", StringComparison.Ordinal) || message.StartsWith(source + " ", StringComparison.Ordinal)
            ? message : $"{source}: {message}";
        return $"{t} {LevelName(level),-4}  {body}";
    }

    public static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "",
    };

    // Akka's LogEvent.ToString(): [LEVEL][timestamp][Thread 0017][source] message
    [GeneratedRegex(@"^\[(?:DEBUG|INFO|WARNING|ERROR)\]\[[^\]]*\]\[Thread \d+\]\[(?<src>[^\]]*)\]\s?(?<msg>.*)$", RegexOptions.Singleline)]
    private static partial Regex AkkaPrefix();

    /// <summary>
    /// The short source of a line and whether it is Akka's internal chatter. Akka's bridge logs under category
    /// Akka.Actor.ActorSystem with Akka's own prefix in the text; our actors live under /user.
    /// </summary>
    public static (string Source, string Message, bool AkkaInternal) Classify(string category, string message)
    {
        if (category.StartsWith("Akka", StringComparison.Ordinal))
        {
            var m = AkkaPrefix().Match(message);
            var src = m.Success ? m.Groups["src"].Value : category;
            var text = m.Success ? m.Groups["msg"].Value : message;
            // A run's learner entity: /system/sharding/learner/SHARD/RUN (its children, e.g. the weight publisher, below it).
            const string region = "/system/sharding/" + LearnerRegion.Name + "/";
            var entity = src.IndexOf(region, StringComparison.Ordinal);
            if (entity >= 0 && src[(entity + region.Length)..].Split('/').Length >= 2) return ("learner", text, false);
            var user = src.IndexOf("/user/", StringComparison.Ordinal);
            if (user >= 0)
            {
                var path = src[(user + 6)..].Split('/');
                return (path[0] switch { "membership" => "cluster", "rollout-link" or "reward-link" => "run", _ => path[0] }, text, false);
            }
            return (AkkaSource(src), text, true);
        }
        return (category switch
        {
            "Scst.Host.Cluster.ClusterNode" => "cluster",
            _ when category.StartsWith("Microsoft.", StringComparison.Ordinal) => "host",
            _ => category.Contains('.') ? category[(category.LastIndexOf('.') + 1)..].ToLowerInvariant() : category,
        }, message, category.StartsWith("Microsoft.", StringComparison.Ordinal));
    }

    static string AkkaSource(string src)
    {
        var s = src.ToLowerInvariant();
        if (s.Contains("singleton")) return "singleton";
        if (s.Contains("sharding")) return "sharding";
        if (s.Contains("sbr") || s.Contains("splitbrain") || s.Contains("downing")) return "sbr";
        if (s.Contains("cluster")) return "cluster";
        if (s.Contains("remot") || s.Contains("endpoint") || s.Contains("transport") || s.Contains("dotnetty")) return "remote";
        if (s.Contains("persistence") || s.Contains("journal") || s.Contains("snapshot") || s.Contains("sql")) return "persistence";
        return "akka";
    }

    interface ISink
    {
        bool IsEnabled(LogLevel level, bool akkaInternal);
        void Write(DateTime time, LogLevel level, string source, string message, Exception? error);
    }

    sealed class ConsoleSink(LogLevel min, bool verbose) : ISink
    {
        public bool IsEnabled(LogLevel level, bool akkaInternal) => level >= min && (verbose || !akkaInternal || level >= LogLevel.Warning);

        public void Write(DateTime time, LogLevel level, string source, string message, Exception? error)
        {
            var line = FormatLine(time, level, source, WithoutTrace(message));
            // One line on the console: the exception's type and message; the log file has the stack.
            if (error is not null && !message.Contains(error.Message, StringComparison.Ordinal)) line += $" ({error.GetType().Name}: {error.Message})";
            ConsoleOutput.WriteLogLine(line, level);
        }
    }

    /// <summary>
    /// A message without the stack trace Akka puts in an error's text ("...\nCause: System.IO.IOException: ...\n   at ...");
    /// the cause's first line stays. The console never shows frames; the log file keeps the whole text.
    /// </summary>
    public static string WithoutTrace(string message)
    {
        var cause = message.IndexOf("\nCause: ", StringComparison.Ordinal);
        var frame = StackFrameLine().Match(message);
        var cut = cause >= 0 ? cause : frame.Success ? frame.Index : -1;
        if (cut < 0) return message;
        var head = message[..cut].TrimEnd();
        if (cause < 0) return head;
        var causeLine = message[(cause + "\nCause: ".Length)..].Split('\n')[0].TrimEnd('\r');
        var causeMessage = causeLine[(causeLine.IndexOf(": ", StringComparison.Ordinal) + 1)..].Trim();
        return causeMessage.Length > 0 && head.Contains(causeMessage, StringComparison.Ordinal) ? head : $"{head} ({causeLine})";
    }

    [GeneratedRegex(@"\r?\n\s+at |\r?\n\s*---> ")]
    private static partial Regex StackFrameLine();

    sealed class FileSink : ISink, IDisposable
    {
        readonly StreamWriter _w;
        readonly object _gate = new();

        public FileSink(string file)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
            _w = new StreamWriter(new FileStream(file, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        }

        public bool IsEnabled(LogLevel level, bool akkaInternal) => level >= (Verbose ? LogLevel.Debug : LogLevel.Information);

        bool _broken;

        // The log file is a copy of what the console shows: a full disk must not turn a log line into the run's error
        // (the checkpoint or journal write that fails next says so); after one failed write the file is left alone.
        public void Write(DateTime time, LogLevel level, string source, string message, Exception? error)
        {
            var line = FormatLine(time, level, source, message, withDate: true);
            lock (_gate)
            {
                if (_broken) return;
                try
                {
                    _w.WriteLine(line);
                    if (error is not null) _w.WriteLine(error.ToString());
                }
                catch (IOException) { _broken = true; }
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                try { _w.Dispose(); }
                catch (IOException) { }
            }
        }
    }

    sealed class LineLoggerProvider(ISink sink) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new LineLogger(categoryName, sink);
        public void Dispose() => (sink as IDisposable)?.Dispose();
    }

    sealed class LineLogger(string category, ISink sink) : ILogger
    {
        readonly bool _akka = category.StartsWith("Akka", StringComparison.Ordinal);

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        // Akka lines are classified by their text (which actor logged), so they are let through here and filtered in Log.
        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && sink.IsEnabled(logLevel, akkaInternal: !_akka && category.StartsWith("Microsoft.", StringComparison.Ordinal));

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var (source, message, internalLine) = Classify(category, formatter(state, exception));
            if (!sink.IsEnabled(logLevel, internalLine)) return;
            sink.Write(DateTime.Now, logLevel, source, message, exception);
        }
    }
}
