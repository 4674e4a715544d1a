using System.CommandLine;

namespace Scst.Host;

/// <summary>
/// The command line's shared options. --config, --run-dir and --verbose reach every command; the cluster, TLS and
/// metrics options are attached only to the commands they act on (<see cref="AddCluster"/>, <see cref="AddMetrics"/>),
/// so `score --help` or `model info --help` does not list them.
/// </summary>
public static class GlobalOptions
{
    public static readonly Option<string> Role = new("--role")
    {
        Description = "Node role: learner | rollout | reward | all (all = everything in one process, no network) | submit (send a run to a running cluster and follow it)",
        DefaultValueFactory = _ => "all",
    };

    public static readonly Option<FileInfo?> Config = new("--config")
    {
        Description = "YAML config in LAVIS's schema (model, datasets, run, scst)",
        Recursive = true,
    };

    public static readonly Option<FileInfo[]> Hocon = new("--hocon")
    {
        Description = "Extra HOCON files merged over hocon/ (later wins)",
        AllowMultipleArgumentsPerToken = true,
    };

    public static readonly Option<string[]> SeedNodes = new("--seed-nodes")
    {
        Description = "Cluster seed nodes, e.g. akka.tcp://scst@127.0.0.1:4053",
        AllowMultipleArgumentsPerToken = true,
    };

    public static readonly Option<string?> RunId = new("--run-id")
    {
        Description = "The run's id in the cluster (default: the run folder's name); rollout and reward nodes serve this run (default: the first one announced)",
    };

    public static readonly Option<int?> Port = new("--port")
    {
        Description = "Akka.Remote port for this node (0 = any free port)",
    };

    public static readonly Option<DirectoryInfo?> RunDir = new("--run-dir")
    {
        Description = "Folder for checkpoints, metrics.jsonl, plots and the journal",
        Recursive = true,
    };

    public static readonly Option<int?> MetricsPort = new("--metrics-port")
    {
        Description = "Serve Prometheus metrics (meter \"Scst\") on this port at /metrics; off by default (or set SCST_METRICS_PORT)",
    };

    public static readonly Option<string> MetricsHost = new("--metrics-host")
    {
        Description = "Address the metrics endpoint binds to (default 127.0.0.1: this machine only)",
        DefaultValueFactory = _ => "127.0.0.1",
    };

    public static readonly Option<FileInfo?> TlsCert = new("--tls-cert")
    {
        Description = "PKCS#12 (.pfx) certificate + key of this node: Akka.Remote speaks mutual TLS only (seeds become akka.ssl.tcp://)",
    };

    public static readonly Option<FileInfo?> TlsCa = new("--tls-ca")
    {
        Description = "CA certificate (PEM/DER) every peer's certificate must chain to (default: the machine's trust store)",
    };

    public static readonly Option<string?> TlsPasswordEnv = new("--tls-password-env")
    {
        Description = "Environment variable holding the --tls-cert password (default SCST_TLS_PASSWORD)",
    };

    public static readonly Option<bool> Verbose = new("--verbose")
    {
        Description = "Show Akka's internal log lines below Warning, and debug lines (the run's log file keeps them anyway)",
        Recursive = true,
    };

    public static readonly string[] Roles = ["learner", "rollout", "reward", "all", "submit"];

    /// <summary>On the root: the options every command understands, and (for `--role R --config FILE` without a command) the cluster ones.</summary>
    public static void AddTo(RootCommand root)
    {
        Role.AcceptOnlyFromAmong(Roles);
        foreach (var o in new Option[] { Config, RunDir, Verbose }) root.Options.Add(o);
        AddCluster(root);
        AddMetrics(root);
    }

    /// <summary>Where a command runs a cluster node: role, placement, seeds, extra HOCON and TLS.</summary>
    public static void AddCluster(Command cmd, bool withRole = true)
    {
        if (withRole) cmd.Options.Add(Role);
        foreach (var o in new Option[] { Hocon, SeedNodes, Port, RunId, TlsCert, TlsCa, TlsPasswordEnv }) cmd.Options.Add(o);
    }

    /// <summary>Where a command runs long enough to be scraped: the Prometheus endpoint.</summary>
    public static void AddMetrics(Command cmd)
    {
        cmd.Options.Add(MetricsPort);
        cmd.Options.Add(MetricsHost);
    }
}
