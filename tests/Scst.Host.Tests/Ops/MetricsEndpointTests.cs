using System.Globalization;
using Scst.Training.Telemetry;
using Scst.Host.Telemetry;
using Scst.Host.Tests.Cluster;

namespace Scst.Host.Tests.Ops;

/// <summary>The Prometheus endpoint: serves the Scst meter, and listens on loopback only unless told otherwise.</summary>
public class MetricsEndpointTests
{
    [Fact]
    public async Task Endpoint_serves_the_Scst_instruments_on_loopback_only()
    {
        var port = HostProcess.FreePort();
        using var provider = MetricsEndpoint.Start("127.0.0.1", port);
        ScstMetrics.RecordUpdate("scst", 50, 7, new Dictionary<string, double> { ["reward_mean"] = 0.625, ["baseline_mean"] = 0.5 });
        ScstMetrics.PersistenceLag.Record(0.004);

        using var http = new HttpClient();
        var text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
        Assert.Contains("scst_updates_total{", text);
        Assert.Contains("scst_samples_total{", text);
        Assert.Contains("scst_reward", text);
        Assert.Contains("scst_baseline", text);
        Assert.Contains("scst_persistence_lag_seconds", text);
        Assert.Contains("scst_policy_version", text);

        // /proc/net/tcp lists listening sockets as hex local address:port; 0100007F is 127.0.0.1.
        if (File.Exists("/proc/net/tcp"))
        {
            var hexPort = port.ToString("X4", CultureInfo.InvariantCulture);
            var listening = File.ReadAllLines("/proc/net/tcp").Skip(1).Select(l => l.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f[1].EndsWith(":" + hexPort, StringComparison.Ordinal) && f[3] == "0A").Select(f => f[1]).ToList();
            Assert.NotEmpty(listening);
            Assert.All(listening, a => Assert.Equal("0100007F:" + hexPort, a));
            Assert.DoesNotContain(File.Exists("/proc/net/tcp6") ? File.ReadAllLines("/proc/net/tcp6").Skip(1) : [],
                l => l.Contains(":" + hexPort + " ", StringComparison.Ordinal) && l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3] == "0A");
        }
    }

    [SkippableTheory]
    [InlineData(new string[0], null)]
    [InlineData(new[] { "--metrics-port", "9464" }, "127.0.0.1:9464")]
    [InlineData(new[] { "--metrics-port", "9464", "--metrics-host", "0.0.0.0" }, "0.0.0.0:9464")]
    public void Endpoint_is_off_unless_a_port_is_given(string[] args, string? expected)
    {
        Skip.IfNot(string.IsNullOrEmpty(Environment.GetEnvironmentVariable(MetricsEndpoint.PortVariable)), "SCST_METRICS_PORT is set in this environment");
        var root = new System.CommandLine.RootCommand();
        GlobalOptions.AddTo(root);
        var got = MetricsEndpoint.Requested(root.Parse(args));
        Assert.Equal(expected, got is { } g ? $"{g.Host}:{g.Port}" : null);
    }

    [Fact]
    public void A_port_outside_the_range_is_a_clear_error()
    {
        var root = new System.CommandLine.RootCommand();
        GlobalOptions.AddTo(root);
        var e = Assert.Throws<ArgumentException>(() => MetricsEndpoint.Requested(root.Parse(["--metrics-port", "70000"])));
        Assert.Contains("70000", e.Message);
    }
}
