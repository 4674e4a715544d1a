using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Scst.Actors.Messages;

namespace Scst.Actors.Pipeline;

/// <summary>
/// What a run is, as its learner entity journals it first: the id (the entity id), the run directory (checkpoints,
/// metrics, summary.json; on a shared file system when learner nodes may take over each other's runs) and the config
/// text it was submitted with. A learner node that inherits the entity rebuilds the run from this alone.
/// </summary>
public sealed record RunSpec(string RunId, string RunDir, string ConfigPath, string ConfigText)
{
    /// <summary>SHA-256 of the config text: a run keeps the config it started with.</summary>
    public string ConfigSha256 => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ConfigText)));
}

public static partial class RunIds
{
    /// <summary>Cluster roles of members that talk to runs but are not nodes of any (the `status` and `submit` commands).</summary>
    public static readonly ImmutableArray<string> ClientRoles = ["status", "submit"];

    /// <summary>The distributed pub-sub topic learner entities announce their runs on (workers and `status` find runs there).</summary>
    public const string Topic = "scst-runs";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex Valid();

    [GeneratedRegex("[^A-Za-z0-9._-]+")]
    private static partial Regex Invalid();

    /// <summary>Why <paramref name="id"/> cannot name a run (it becomes an entity id and part of a persistence id), or null.</summary>
    public static string? Problem(string id) => Valid().IsMatch(id) ? null
        : $"run id '{id}' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit";

    /// <summary>The default run id: the run directory's name, with characters a run id cannot hold replaced by '-'.</summary>
    public static string FromRunDir(string runDir)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(runDir)));
        var id = Invalid().Replace(name, "-").Trim('-', '.', '_');
        if (id.Length > 64) id = id[..64];
        return id.Length == 0 ? "run" : id;
    }
}

/// <summary>
/// Start (or continue) the run <see cref="Spec"/> names; the sender is told <see cref="RunAccepted"/> or <see cref="RunRefused"/>,
/// and later <see cref="RunEnded"/>. Repeated until accepted: the entity may be starting or moving.
/// <see cref="StopAfterUpdates"/> is this submission's <c>--stop-after</c> (0: none).
/// </summary>
public sealed record StartRun(RunSpec Spec, long StopAfterUpdates) : IScstMessage;

/// <summary>Learner journal event, the first of every run: what <see cref="RunSpec"/> the run was started with.</summary>
public sealed record RunSubmitted(RunSpec Spec) : IScstMessage;

/// <summary>Asks a run's learner for the <see cref="RunSpec"/> it runs (answered with <see cref="RunSubmitted"/>): shared reward nodes load the run's references from its config.</summary>
public sealed record GetRunSpec : IScstMessage
{
    public static readonly GetRunSpec Instance = new();
}

/// <summary>Tell the sender when the run ends (<see cref="RunEnded"/>); answered with <see cref="RunAccepted"/> while it runs.</summary>
public sealed record WatchRun : IScstMessage
{
    public static readonly WatchRun Instance = new();
}

public sealed record RunAccepted(string RunId, long Update, long TotalUpdates, string Mode, string Node) : IScstMessage;

/// <summary>The run cannot be started as asked (its id belongs to another run directory, or its config changed).</summary>
public sealed record RunRefused(string RunId, string Reason) : IScstMessage;

/// <summary>
/// The run is over: completed, <see cref="Stopped"/> on request (a checkpoint at <see cref="Updates"/>; submitting it
/// again continues), or failed with <see cref="Error"/> (<see cref="UserError"/>: a bad file or setting, said in one
/// line; otherwise unexpected, with the trace in the hosting node's log). <see cref="Metrics"/> are the final
/// evaluation's, keyed "split/metric".
/// </summary>
public sealed record RunEnded(
    string RunId,
    long Updates,
    long SamplesConsumed,
    double ElapsedS,
    bool Completed,
    bool Stopped,
    string FinalCheckpoint,
    ImmutableDictionary<string, double> Metrics,
    string Error = "",
    bool UserError = false,
    string Node = "") : IScstMessage
{
    public bool Failed => Error.Length > 0;

    public static RunEnded From(string runId, Scst.Training.TrainSummary s, bool stopped, string node) => new(runId, s.Updates, s.SamplesConsumed, s.ElapsedS,
        s.Completed, stopped, s.FinalCheckpoint,
        s.Metrics.SelectMany(split => split.Value.Select(m => KeyValuePair.Create($"{split.Key}/{m.Key}", m.Value))).ToImmutableDictionary(),
        Node: node);

    public static RunEnded FromError(string runId, string error, bool userError, string node) =>
        new(runId, 0, 0, 0, false, false, "", ImmutableDictionary<string, double>.Empty, error, userError, node);

    /// <summary>The metrics by split, as the console prints them.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> MetricsBySplit() =>
        Metrics.GroupBy(m => m.Key[..m.Key.IndexOf('/')])
            .ToDictionary(g => g.Key, g => (IReadOnlyDictionary<string, double>)g.ToDictionary(m => m.Key[(m.Key.IndexOf('/') + 1)..], m => m.Value));
}

/// <summary>A learner entity's periodic "run <see cref="RunId"/> is running here" on <see cref="RunIds.Topic"/>.</summary>
public sealed record RunAnnounced(string RunId, string Mode, string Node) : IScstMessage;
