using Scst.Actors.Pipeline;

namespace Scst.Actors.Tests;

public class LearnerJournalStateTests
{
    [Fact]
    public void Events_give_each_updates_batches_the_samples_per_epoch_duplicates_and_the_last_pending_list()
    {
        var j = new LearnerJournalState();
        j.Apply(LearnerJournalState.StepEvent(0, cursorEpoch: 0, cursorPosition: 5, [(0, [1, 2]), (0, [3, 4, 5])], [(0, [6, 7])], droppedStale: 0));
        j.Apply(LearnerJournalState.StepEvent(1, cursorEpoch: 1, cursorPosition: 2, [(0, [6, 7]), (1, [2, 1])], [(1, [9]), (1, [8, 3])], droppedStale: 4));

        Assert.Equal(["1,2", "3,4,5"], j.Steps[0].Batches.Select(b => string.Join(",", b)));
        Assert.Equal((1L, 1), (j.Steps[1].Update, j.Steps[1].Epoch));
        Assert.Equal(9, j.Samples);
        Assert.Equal(0, j.Duplicates); // 1 and 2 again, but in another epoch
        Assert.Equal([0, 1], j.Consumed.Keys);
        Assert.Equal(7, j.Consumed[0].Count);
        Assert.Equal(["1:9", "1:8,3"], j.CarriedPending.Select(p => $"{p.Epoch}:{string.Join(",", p.Ids)}"));

        j.Apply(LearnerJournalState.StepEvent(2, 1, 4, [(1, [1, 5])], [], 4));
        Assert.Equal(1, j.Duplicates);
        Assert.Empty(j.CarriedPending);
    }

    [Fact]
    public void A_skipped_update_consumes_its_batches_and_is_recorded_and_counted_as_skipped()
    {
        var j = new LearnerJournalState();
        j.Apply(LearnerJournalState.StepEvent(0, 0, 2, [(0, [1, 2])], [], 0));
        j.Apply(new LearnerStepSkipped(LearnerJournalState.StepEvent(1, 0, 4, [(0, [3, 4])], [], 0), "loss"));
        j.Apply(LearnerJournalState.StepEvent(2, 0, 6, [(0, [5, 6])], [], 0));

        Assert.Equal([null, "loss", null], j.Steps.Values.OrderBy(s => s.Update).Select(s => s.Skipped));
        Assert.Equal(["3,4"], j.Steps[1].Batches.Select(b => string.Join(",", b)));
        Assert.Equal(1, j.NonfiniteSkipped);
        Assert.Equal(6, j.Samples);
        Assert.Equal(6, j.Consumed[0].Count);
    }

    [Fact]
    public void A_step_event_flattens_batches_and_pending_with_their_sizes_and_epochs()
    {
        var e = LearnerJournalState.StepEvent(7, 2, 30, [(1, [4]), (2, [5, 6])], [(2, [8, 9, 10])], droppedStale: 3);
        Assert.Equal((7L, 8L, 2, 30, 3L), (e.Update, e.PolicyVersion, e.CursorEpoch, e.CursorPosition, e.RolloutsDroppedStale));
        Assert.Equal([1, 2], e.BatchSizes.ToArray());
        Assert.Equal([1, 2], e.BatchEpochs.ToArray());
        Assert.Equal([4, 5, 6], e.ImageIds.ToArray());
        Assert.Equal([3], e.PendingSizes.ToArray());
        Assert.Equal([2], e.PendingEpochs.ToArray());
        Assert.Equal([8, 9, 10], e.PendingIds.ToArray());
    }

    [Fact]
    public void Live_updates_drop_the_carried_list_and_old_step_records()
    {
        var j = new LearnerJournalState();
        j.Apply(LearnerJournalState.StepEvent(0, 0, 1, [(0, [1])], [(0, [2])], 0));
        j.Apply(LearnerJournalState.StepEvent(1, 0, 2, [(0, [2])], [(0, [3])], 0));
        j.ClearCarriedPending();
        j.ForgetStep(0);
        Assert.Empty(j.CarriedPending);
        Assert.Equal([1L], j.Steps.Keys);
        Assert.Equal(2, j.Samples); // consumption is history: forgetting a step record keeps it
    }
}
