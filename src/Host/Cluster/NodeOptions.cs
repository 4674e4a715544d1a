namespace Scst.Host.Cluster;

/// <summary>Where and as what one Scst node runs; built from the global CLI options.</summary>
public sealed record NodeOptions
{
    public const string SystemName = "scst";

    /// <summary>learner | rollout | reward | all.</summary>
    public string Role { get; init; } = "all";

    /// <summary>Akka.Remote port; null keeps the HOCON value (0 = any free port).</summary>
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

    /// <summary>Cluster roles this node takes. "all" takes every role, so the same actors run in one process.</summary>
    public IReadOnlyList<string> ClusterRoles => Role switch
    {
        "all" => ["learner", "rollout", "reward"],
        "learner" or "rollout" or "reward" => [Role],
        _ => throw new ArgumentException($"--role '{Role}' is not one of learner, rollout, reward, all"),
    };
}
