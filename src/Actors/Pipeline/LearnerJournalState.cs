namespace Scst.Actors.Pipeline;

/// <summary>
/// One journaled update: the micro-batches (image ids) it consumed and the data epoch its step used;
/// <see cref="Skipped"/>: why it applied nothing (a non-finite loss, reward or gradient norm), null when applied.
/// </summary>
public sealed record StepRecord(long Update, int Epoch, int[][] Batches, string? Skipped = null);

/// <summary>
/// What the learner's journal says about consumption, built from its <see cref="LearnerStepApplied"/> events: the
/// batches of each recent update (for replay after a checkpoint), the samples consumed per data epoch (a sample seen
/// twice in an epoch is a duplicate), and the micro-batches drawn but not consumed at the last update, which a restart
/// hands out again. The policy version, the data cursor and the dropped-stale count stay with the learner's other state.
/// </summary>
public sealed class LearnerJournalState
{
    readonly Dictionary<long, StepRecord> _steps = [];
    readonly SortedDictionary<int, HashSet<int>> _consumed = [];
    readonly List<(int Epoch, int[] Ids)> _carriedPending = [];

    public IReadOnlyDictionary<long, StepRecord> Steps => _steps;
    /// <summary>Image ids consumed, by data epoch (ascending).</summary>
    public IReadOnlyDictionary<int, HashSet<int>> Consumed => _consumed;
    public long Samples { get; private set; }
    /// <summary>Updates journaled as skipped (<see cref="LearnerStepSkipped"/>) in the whole run.</summary>
    public long NonfiniteSkipped { get; private set; }
    public long Duplicates { get; private set; }
    /// <summary>The last event's drawn-but-unconsumed micro-batches, in the order they were journaled.</summary>
    public IReadOnlyList<(int Epoch, int[] Ids)> CarriedPending => _carriedPending;

    /// <summary>A skipped update consumed its batches like an applied one; its record says it applied nothing.</summary>
    public void Apply(LearnerStepSkipped e)
    {
        Apply(e.Step);
        _steps[e.Step.Update] = _steps[e.Step.Update] with { Skipped = e.Reason };
        NonfiniteSkipped++;
    }

    public void Apply(LearnerStepApplied e)
    {
        var batches = new int[e.BatchSizes.Length][];
        var offset = 0;
        for (var m = 0; m < batches.Length; m++)
        {
            batches[m] = e.ImageIds.AsSpan(offset, e.BatchSizes[m]).ToArray();
            offset += e.BatchSizes[m];
            var seen = _consumed.TryGetValue(e.BatchEpochs[m], out var set) ? set : _consumed[e.BatchEpochs[m]] = [];
            foreach (var id in batches[m])
                if (!seen.Add(id)) Duplicates++;
            Samples += batches[m].Length;
        }
        _steps[e.Update] = new StepRecord(e.Update, e.CursorEpoch, batches);
        _carriedPending.Clear();
        offset = 0;
        for (var i = 0; i < e.PendingSizes.Length; i++)
        {
            _carriedPending.Add((e.PendingEpochs[i], e.PendingIds.AsSpan(offset, e.PendingSizes[i]).ToArray()));
            offset += e.PendingSizes[i];
        }
    }

    /// <summary>Live, pending work is in the scheduler; only a restart needs the journaled list.</summary>
    public void ClearCarriedPending() => _carriedPending.Clear();

    /// <summary>Replay never goes further back than the last checkpoint, so older step records can go.</summary>
    public void ForgetStep(long update) => _steps.Remove(update);

    /// <summary>
    /// The event for update <paramref name="update"/> (giving policy version update + 1): the micro-batches it consumed
    /// and those drawn but not consumed, each as (epoch, image ids), flattened with their sizes.
    /// </summary>
    public static LearnerStepApplied StepEvent(long update, int cursorEpoch, int cursorPosition,
        IReadOnlyList<(int Epoch, int[] Ids)> batches, IReadOnlyList<(int Epoch, int[] Ids)> pending, long droppedStale) =>
        new(update, update + 1, cursorEpoch, cursorPosition,
            [.. batches.Select(b => b.Ids.Length)], [.. batches.Select(b => b.Epoch)], [.. batches.SelectMany(b => b.Ids)],
            [.. pending.Select(p => p.Ids.Length)], [.. pending.Select(p => p.Epoch)], [.. pending.SelectMany(p => p.Ids)], droppedStale);
}
