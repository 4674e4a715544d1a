using System.Globalization;
using System.Text.Json.Nodes;
using Scst.Training;
using Scst.Training.Telemetry;

namespace Scst.Actors.Pipeline;

/// <summary>
/// What the actor learner reports beyond the plain trainer's figures: which nodes took part and served rollouts, and how
/// stale the rollouts it used were. It also joins a scored update's parts into the micro-batches <see cref="ScstUpdate"/>
/// applies. Pure bookkeeping: the learner actor feeds it and puts its figures in metrics.jsonl and summary.json.
/// </summary>
public sealed class LearnerRunStats
{
    readonly Dictionary<string, long> _rolloutsByNode = [];
    readonly Dictionary<string, long> _rolloutsByDevice = [];
    readonly HashSet<string> _nodesSeen = [];
    readonly SortedDictionary<long, long> _stalenessHistogram = []; // rollouts used, by versions behind (this process's updates only)

    public int NodesSeen => _nodesSeen.Count;

    public void NodeSeen(string node) => _nodesSeen.Add(node);

    /// <param name="device">The rollout actor's device on that node (<see cref="RolloutDevices"/>).</param>
    public void RolloutFrom(string node, string device)
    {
        _rolloutsByNode[node] = _rolloutsByNode.GetValueOrDefault(node) + 1;
        var key = $"{node} {device}";
        _rolloutsByDevice[key] = _rolloutsByDevice.GetValueOrDefault(key) + 1;
        _nodesSeen.Add(node);
    }

    /// <summary>The <c>rollout_nodes</c> metrics row: rollouts served so far by each node (null before any).</summary>
    public IReadOnlyDictionary<string, double>? RolloutNodesRow() =>
        _rolloutsByNode.Count == 0 ? null : _rolloutsByNode.ToDictionary(kv => kv.Key, kv => (double)kv.Value);

    /// <summary>
    /// An update's scored work as micro-batches (async: one work item each; sync: the parts of each micro-batch joined
    /// in order, as the plain trainer generates them), recording each one's staleness against <paramref name="update"/>.
    /// </summary>
    public (List<RolloutWork<TWorker>[]> Micros, List<ScoredRollout> Scored, IReadOnlyDictionary<string, double> Figures) Join<TWorker>(
        IReadOnlyList<RolloutWork<TWorker>> used, bool async, long update, long padId) where TWorker : class
    {
        var micros = async ? used.Select(w => new[] { w }).ToList() : used.GroupBy(w => w.Micro).Select(g => g.ToArray()).ToList();
        var scored = new List<ScoredRollout>(micros.Count);
        var staleness = new List<long>(micros.Count);
        foreach (var parts in micros)
        {
            var rollout = RolloutBatch.Concat([.. parts.Select(w => w.Rollout!.ToBatch())], padId);
            var greedy = parts.Any(w => w.Score!.GreedyRewards.IsDefaultOrEmpty) ? null : parts.SelectMany(w => w.Score!.GreedyRewards).ToArray();
            scored.Add(new ScoredRollout(rollout, [.. parts.SelectMany(w => w.Score!.Rewards)], [.. parts.SelectMany(w => w.Score!.Advantages)], greedy));
            var behind = update - rollout.PolicyVersion;
            staleness.Add(behind);
            ScstMetrics.Staleness.Record(behind);
            _stalenessHistogram[behind] = _stalenessHistogram.GetValueOrDefault(behind) + 1;
        }
        var figures = new Dictionary<string, double>
        {
            ["staleness_mean"] = staleness.Average(),
            ["staleness_max"] = staleness.Max(),
            ["rollout_latency_s"] = used.Average(w => w.RolloutLatencyS),
            ["rollout_latency_max_s"] = used.Max(w => w.RolloutLatencyS),
            ["rollout_workers"] = used.Select(w => w.Worker).Distinct().Count(),
            // The slowest part's legs (sync waits for the slowest): weights fetch+load at the worker, generation, scoring.
            ["weights_wait_max_s"] = used.Max(w => w.Rollout!.WeightsWaitS),
            ["generate_max_s"] = used.Max(w => w.Rollout!.GenerateS),
            ["reward_max_s"] = used.Max(w => w.ScoreLatencyS),
        };
        return (micros, scored, figures);
    }

    /// <summary>The actor learner's keys of summary.json.</summary>
    public JsonObject Summary(LearnerJournalState journal, long update, long droppedStale, int trainImages, string mode)
    {
        var perEpoch = new JsonObject();
        foreach (var (epoch, ids) in journal.Consumed) perEpoch[epoch.ToString(CultureInfo.InvariantCulture)] = ids.Count;
        var byNode = new JsonObject();
        foreach (var (node, n) in _rolloutsByNode.OrderBy(kv => kv.Key, StringComparer.Ordinal)) byNode[node] = n;
        var byDevice = new JsonObject();
        foreach (var (device, n) in _rolloutsByDevice.OrderBy(kv => kv.Key, StringComparer.Ordinal)) byDevice[device] = n;
        var histogram = new JsonObject();
        foreach (var (k, n) in _stalenessHistogram) histogram[k.ToString(CultureInfo.InvariantCulture)] = n;
        return new JsonObject
        {
            ["staleness_histogram"] = histogram,
            ["policy_version"] = update,
            ["samples_consumed_per_epoch"] = perEpoch,
            ["duplicate_samples"] = journal.Duplicates,
            [NonfiniteGuard.MetricKey] = journal.NonfiniteSkipped,
            ["train_images"] = trainImages,
            ["nodes_seen"] = _nodesSeen.Count,
            ["rollouts_by_node"] = byNode,
            ["rollouts_by_device"] = byDevice,
            ["rollouts_dropped_stale"] = droppedStale,
            ["scst_mode"] = mode,
        };
    }
}
