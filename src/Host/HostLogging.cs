using Microsoft.Extensions.Logging;

namespace Scst.Host;

/// <summary>One logger factory for the whole process (our code and, through Akka.Hosting, Akka's own logs).</summary>
public static class HostLogging
{
    public static ILoggerFactory Create(LogLevel minimum = LogLevel.Information) =>
        LoggerFactory.Create(b => b
            .SetMinimumLevel(Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("SCST_LOG_LEVEL"), true, out var l) ? l : minimum)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss ";
            }));
}
