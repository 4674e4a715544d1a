using System.CommandLine;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Scst.Training.Telemetry;

namespace Scst.Host.Telemetry;

/// <summary>
/// The Prometheus scrape endpoint for the "Scst" meter (and nothing else): off unless --metrics-port or
/// SCST_METRICS_PORT names a port, bound to 127.0.0.1 unless --metrics-host says otherwise. Scrape http://HOST:PORT/metrics.
/// </summary>
public static class MetricsEndpoint
{
    public const string PortVariable = "SCST_METRICS_PORT";

    /// <summary>The (host, port) the command line or environment asks for; null when the endpoint stays off.</summary>
    public static (string Host, int Port)? Requested(ParseResult r)
    {
        var port = r.GetValue(GlobalOptions.MetricsPort);
        if (port is null && Environment.GetEnvironmentVariable(PortVariable) is { Length: > 0 } env)
        {
            if (!int.TryParse(env, out var p))
                throw new ArgumentException($"{PortVariable}='{env}' is not a port number");
            port = p;
        }
        if (port is null) return null;
        if (port is < 1 or > 65535) throw new ArgumentException($"metrics port {port} is outside 1..65535");
        var host = r.GetValue(GlobalOptions.MetricsHost);
        return (string.IsNullOrWhiteSpace(host) ? "127.0.0.1" : host.Trim(), port.Value);
    }

    /// <summary>Starts the listener; dispose the provider to stop it.</summary>
    public static MeterProvider Start(string host, int port)
    {
        return Sdk.CreateMeterProviderBuilder()
            .AddMeter(ScstMetrics.MeterName)
            .AddPrometheusHttpListener(o =>
            {
                // An explicit address, never the exporter's default "localhost" (which some resolvers map beyond loopback).
                o.Host = host;
                o.Port = port;
                // Every scrape sees the latest values (the default caches responses for 300 ms).
                o.ScrapeResponseCacheDurationMilliseconds = 0;
            })
            .Build();
    }
}
