namespace Scst.Host.Cluster;

/// <summary>Where and as what one Scst node runs, as the command line says; <see cref="ScstClusterOptions.From"/> binds it with the --hocon files.</summary>
public sealed record NodeOptions
{
    public const string SystemName = "scst";

    /// <summary>learner | rollout | reward | all.</summary>
    public string Role { get; init; } = "all";

    /// <summary>--run-id: the run a learner submits, or a worker serves (null: derived from the run folder / the first announced run).</summary>
    public string? RunId { get; init; }

    /// <summary>Akka.Remote port; null keeps the --hocon files' value, else 0 (any free port).</summary>
    public int? Port { get; init; }

    public IReadOnlyList<string> SeedNodes { get; init; } = [];

    /// <summary>Extra HOCON files merged over hocon/ in order (later wins).</summary>
    public IReadOnlyList<string> ExtraHoconFiles { get; init; } = [];

    /// <summary>Run folder: holds the SQLite journal (journal.db, snapshots.db) when that backend is used.</summary>
    public string RunDir { get; init; } = "runs/default";

    /// <summary>Shorter failure detection and SBR stable-after (hocon/fast-failure.conf), for tests and chaos runs.</summary>
    public bool FastFailure { get; init; }

    /// <summary>Folder holding base.conf etc.; null searches beside the app, then the working directory.</summary>
    public string? HoconDir { get; init; }

    /// <summary>PKCS#12 file with this node's TLS certificate and key; set, the node speaks only mutual TLS.</summary>
    public string? TlsCertificate { get; init; }

    /// <summary>Environment variable that holds the .pfx password (default SCST_TLS_PASSWORD).</summary>
    public string? TlsPasswordVariable { get; init; }

    /// <summary>CA certificate every peer must chain to; null trusts the machine's store.</summary>
    public string? TlsCa { get; init; }

    /// <summary>Cluster roles this node takes. "all" takes every role, so the same actors run in one process.</summary>
    public IReadOnlyList<string> ClusterRoles => Role switch
    {
        "all" => ["learner", "rollout", "reward"],
        "learner" or "rollout" or "reward" => [Role],
        // The `status` command's member and `--role submit`'s: join, ask (or follow a run), leave; they host nothing and are never given work.
        "status" or "submit" => [Role],
        _ => throw new ArgumentException($"--role '{Role}' is not one of learner, rollout, reward, all, submit"),
    };
}
