using System.CommandLine;

namespace Scst.Host;

/// <summary>Options every command understands (cluster placement, config, run folder).</summary>
public static class GlobalOptions
{
    public static readonly Option<string> Role = new("--role")
    {
        Description = "Node role: learner | rollout | reward | all (all = everything in one process, no network)",
        DefaultValueFactory = _ => "all",
        Recursive = true,
    };

    public static readonly Option<FileInfo?> Config = new("--config")
    {
        Description = "YAML config in LAVIS's schema (model, datasets, run, scst)",
        Recursive = true,
    };

    public static readonly Option<FileInfo[]> Hocon = new("--hocon")
    {
        Description = "Extra HOCON files merged over hocon/ (later wins)",
        Recursive = true,
        AllowMultipleArgumentsPerToken = true,
    };

    public static readonly Option<string[]> SeedNodes = new("--seed-nodes")
    {
        Description = "Cluster seed nodes, e.g. akka.tcp://scst@127.0.0.1:4053",
        Recursive = true,
        AllowMultipleArgumentsPerToken = true,
    };

    public static readonly Option<int?> Port = new("--port")
    {
        Description = "Akka.Remote port for this node (0 = any free port)",
        Recursive = true,
    };

    public static readonly Option<DirectoryInfo?> RunDir = new("--run-dir")
    {
        Description = "Folder for checkpoints, metrics.jsonl, plots and the journal",
        Recursive = true,
    };

    public static readonly Option<int?> MetricsPort = new("--metrics-port")
    {
        Description = "Serve Prometheus metrics (meter \"Scst\") on this port at /metrics; off by default (or set SCST_METRICS_PORT)",
        Recursive = true,
    };

    public static readonly Option<string> MetricsHost = new("--metrics-host")
    {
        Description = "Address the metrics endpoint binds to (default 127.0.0.1: this machine only)",
        DefaultValueFactory = _ => "127.0.0.1",
        Recursive = true,
    };

    public static readonly Option<FileInfo?> TlsCert = new("--tls-cert")
    {
        Description = "PKCS#12 (.pfx) certificate + key of this node: Akka.Remote speaks mutual TLS only (hocon/tls.conf; seeds become akka.ssl.tcp://)",
        Recursive = true,
    };

    public static readonly Option<FileInfo?> TlsCa = new("--tls-ca")
    {
        Description = "CA certificate (PEM/DER) every peer's certificate must chain to (default: the machine's trust store)",
        Recursive = true,
    };

    public static readonly Option<string?> TlsPasswordEnv = new("--tls-password-env")
    {
        Description = "Environment variable holding the --tls-cert password (default SCST_TLS_PASSWORD)",
        Recursive = true,
    };

    public static readonly string[] Roles = ["learner", "rollout", "reward", "all"];

    public static void AddTo(RootCommand root)
    {
        Role.AcceptOnlyFromAmong(Roles);
        foreach (var o in new Option[] { Role, Config, Hocon, SeedNodes, Port, RunDir, MetricsPort, MetricsHost, TlsCert, TlsCa, TlsPasswordEnv }) root.Options.Add(o);
    }
}
