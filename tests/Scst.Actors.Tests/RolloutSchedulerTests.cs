using Scst.Actors.Messages;
using Scst.Actors.Pipeline;

namespace Scst.Actors.Tests;

/// <summary>The learner's dispatch, staleness and redispatch rules, driven with strings as workers and a hand-set clock.</summary>
public class RolloutSchedulerTests
{
    static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>A scheduler whose seeds are 1000 + serial and whose data cursor hands out [0,1], [2,3], ...</summary>
    sealed class Harness
    {
        public readonly List<(string To, IScstMessage Message)> Sent = [];
        public readonly List<string> Warnings = [];
        public readonly RolloutScheduler<string> S;
        public long MicroBatchesLeft = 100;
        int _next;

        public Harness(bool async, int inFlightPerWorker = 2, int maxStaleness = 1, string? localPool = null)
        {
            S = new RolloutScheduler<string>(new RolloutSchedulerOptions(async, inFlightPerWorker, maxStaleness, Timeout),
                serial => 1000 + serial, () => ([_next++, _next++], 0), _ => MicroBatchesLeft, localPool,
                (to, m) => Sent.Add((to, m)), Warnings.Add);
        }

        public List<(string To, RolloutRequest R)> Rollouts() => [.. Sent.Where(x => x.Message is RolloutRequest).Select(x => (x.To, (RolloutRequest)x.Message))];
        public List<(string To, ScoreRequest R)> Scores() => [.. Sent.Where(x => x.Message is ScoreRequest).Select(x => (x.To, (ScoreRequest)x.Message))];
    }

    static RolloutResult Answer(RolloutRequest r, long version) =>
        new(r.RequestId, r.ImageIds, 1, 1, [.. r.ImageIds.Select(i => (long)i)], [.. r.ImageIds.Select(i => $"caption {i}")],
            [.. r.ImageIds.Select(_ => -1f)], [.. r.ImageIds.Select(_ => 1)], version, [], "node-a");

    static ScoreResult Scored(long requestId) => new(requestId, [0.5], [0.1], []);

    [Fact]
    public void Sync_parts_wait_for_a_rollout_worker_then_go_to_the_least_loaded_in_order_with_no_cap()
    {
        var h = new Harness(async: false);
        for (var p = 0; p < 5; p++) h.S.AddSyncPart([10 * p, 10 * p + 1], 0, seed: 50 + p, micro: p / 2);
        h.S.Pump(version: 3, T0);
        Assert.Empty(h.Sent);
        Assert.True(h.S.AddRolloutWorker("a"));
        Assert.True(h.S.AddRolloutWorker("b"));
        Assert.False(h.S.AddRolloutWorker("a"));
        h.S.Pump(version: 3, T0);

        var sent = h.Rollouts();
        Assert.Equal(["a", "b", "a", "b", "a"], sent.Select(x => x.To));
        Assert.Equal([1L, 2, 3, 4, 5], sent.Select(x => x.R.RequestId));
        Assert.Equal([50L, 51, 52, 53, 54], sent.Select(x => x.R.Seed));
        Assert.Equal([40, 41], sent[4].R.ImageIds.ToArray());
        Assert.All(sent, x => Assert.True(x.R.ExactVersion && x.R.MinVersion == 3));
        Assert.Equal((3, 2), (h.S.Load("a"), h.S.Load("b")));
        Assert.Equal((0, 5), (h.S.Queued, h.S.InFlight));
    }

    static string Ids(RolloutRequest r) => string.Join(",", r.ImageIds);

    /// <summary>Answers and scores a request at <paramref name="at"/>.</summary>
    static void Serve(Harness h, RolloutRequest r, long version, DateTime at)
    {
        Assert.NotNull(h.S.OnRollout(Answer(r, version), version, at));
        Assert.True(h.S.OnScore(Scored(r.RequestId)));
    }

    [Fact]
    public void Sync_micro_batch_is_cut_into_one_part_per_worker_addressed_to_it_with_the_micro_batchs_seed()
    {
        var h = new Harness(async: false);
        foreach (var w in new[] { "a", "b", "c" }) h.S.AddRolloutWorker(w);
        h.S.AddRewardWorker("r");
        h.S.AddSyncMicroBatch([0, 1, 2, 3, 4, 5, 6, 7, 8], 0, seed: 77, micro: 0);
        h.S.AddSyncMicroBatch([9, 10], 0, seed: 78, micro: 1); // fewer images than workers: 2 parts
        h.S.Pump(0, T0);
        Assert.Equal(["a:0,1,2@77", "b:3,4,5@77", "c:6,7,8@77", "a:9@78", "b:10@78"], h.Rollouts().Select(x => $"{x.To}:{Ids(x.R)}@{x.R.Seed}"));

        // Answered in reverse order; the update's parts come back in image order, micro-batch by micro-batch.
        var sent = h.Rollouts().Select(x => x.R).Reverse().ToList();
        for (var i = 0; i < sent.Count; i++) Serve(h, sent[i], 0, T0.AddSeconds(1 + i));
        var used = h.S.TakeUpdate(0, 2)!;
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], used.SelectMany(w => w.Ids));
        Assert.Equal([0, 0, 0, 1, 1], used.Select(w => w.Micro));
    }

    [Fact]
    public void Sync_shares_follow_each_workers_measured_throughput_timed_from_its_previous_answer()
    {
        var h = new Harness(async: false);
        h.S.AddRolloutWorker("a");
        h.S.AddRolloutWorker("b");
        h.S.AddRewardWorker("r");
        Assert.Null(h.S.Throughput("a"));
        h.S.AddSyncMicroBatch([0, 1, 2, 3, 4, 5, 6, 7], 0, 5, 0);
        h.S.AddSyncMicroBatch([8, 9, 10, 11, 12, 13, 14, 15], 0, 6, 1);
        h.S.Pump(0, T0);
        var sent = h.Rollouts();
        Assert.Equal(["a", "b", "a", "b"], sent.Select(x => x.To));
        // a: 4 images in 1 s, then its second part in the next 1 s (it served them one after another): 4 images/s.
        // b: 4 images in 4 s, then 4 more by 8 s: 1 image/s.
        Serve(h, sent[0].R, 0, T0.AddSeconds(1));
        Serve(h, sent[2].R, 0, T0.AddSeconds(2));
        Serve(h, sent[1].R, 0, T0.AddSeconds(4));
        Serve(h, sent[3].R, 0, T0.AddSeconds(8));
        Assert.Equal((4.0, 1.0), (h.S.Throughput("a")!.Value, h.S.Throughput("b")!.Value));
        Assert.NotNull(h.S.TakeUpdate(0, 2));

        h.S.AddSyncMicroBatch([.. Enumerable.Range(20, 10)], 0, 7, 0);
        h.S.Pump(1, T0.AddSeconds(8));
        Assert.Equal(["a:20,21,22,23,24,25,26,27", "b:28,29"], h.Rollouts().Skip(4).Select(x => $"{x.To}:{Ids(x.R)}"));
    }

    [Fact]
    public void Sync_part_of_a_lost_worker_goes_to_another_with_the_same_images_and_seed()
    {
        var h = new Harness(async: false);
        foreach (var w in new[] { "a", "b", "c" }) h.S.AddRolloutWorker(w);
        h.S.AddSyncMicroBatch([0, 1, 2, 3, 4, 5], 0, 42, 0);
        h.S.Pump(0, T0);
        Assert.True(h.S.RemoveWorker("b", T0.AddSeconds(1)));
        h.S.Pump(0, T0.AddSeconds(1));
        var again = h.Rollouts()[3];
        Assert.Equal(("a", "2,3", 42L), (again.To, Ids(again.R), again.R.Seed));

        // One that lets its part time out loses it to another worker too, though the part was cut for it.
        h.S.ResendOverdue(T0 + Timeout);
        h.S.Pump(0, T0 + Timeout);
        Assert.Equal(["c:0,1@42", "a:4,5@42"], h.Rollouts().Skip(4).Select(x => $"{x.To}:{Ids(x.R)}@{x.R.Seed}"));
    }

    [Fact]
    public void Sync_worker_joining_mid_update_takes_a_share_from_the_next_update()
    {
        var h = new Harness(async: false);
        h.S.AddRewardWorker("r");
        h.S.AddSyncMicroBatch([0, 1, 2, 3], 0, 10, 0); // no rollout worker yet: one part, waiting
        h.S.Pump(0, T0);
        Assert.Empty(h.Rollouts());
        h.S.AddRolloutWorker("a");
        h.S.Pump(0, T0);
        h.S.AddRolloutWorker("c");
        h.S.Pump(0, T0);
        Assert.Equal(["a:0,1,2,3"], h.Rollouts().Select(x => $"{x.To}:{Ids(x.R)}"));
        Serve(h, h.Rollouts()[0].R, 0, T0.AddSeconds(2));
        Assert.NotNull(h.S.TakeUpdate(0, 1));

        // c is not measured yet: it counts as a's 2 images/s, so the next micro-batch is cut in halves.
        h.S.AddSyncMicroBatch([4, 5, 6, 7, 8, 9], 0, 11, 0);
        h.S.Pump(1, T0.AddSeconds(2));
        Assert.Equal(["a:4,5,6@11", "c:7,8,9@11"], h.Rollouts().Skip(1).Select(x => $"{x.To}:{Ids(x.R)}@{x.R.Seed}"));
    }

    [Fact]
    public void Async_keeps_InFlightPerWorker_requests_at_each_worker_with_fresh_seeds()
    {
        var h = new Harness(async: true, inFlightPerWorker: 2, maxStaleness: 2);
        h.S.AddRolloutWorker("a");
        h.S.AddRolloutWorker("b");
        h.S.Pump(version: 5, T0);

        var sent = h.Rollouts();
        Assert.Equal(["a", "b", "a", "b"], sent.Select(x => x.To));
        Assert.Equal([1000L, 1001, 1002, 1003], sent.Select(x => x.R.Seed));
        Assert.Equal([6, 7], sent[3].R.ImageIds.ToArray());
        Assert.All(sent, x => Assert.True(!x.R.ExactVersion && x.R.MinVersion == 3));
        h.S.Pump(5, T0);
        Assert.Equal(4, h.Rollouts().Count); // window full

        // A request counts until it is scored; then the top-up refills the window.
        h.S.AddRewardWorker("r");
        Assert.NotNull(h.S.OnRollout(Answer(sent[0].R, 5), 5, T0.AddSeconds(2)));
        h.S.Pump(5, T0.AddSeconds(2));
        Assert.Equal(4, h.Rollouts().Count);
        Assert.True(h.S.OnScore(Scored(sent[0].R.RequestId)));
        h.S.Pump(5, T0.AddSeconds(2));
        var refill = h.Rollouts()[4];
        Assert.Equal(("a", 1004L), (refill.To, refill.R.Seed));
    }

    [Fact]
    public void Async_top_up_never_draws_past_the_plans_remaining_micro_batches()
    {
        var h = new Harness(async: true, inFlightPerWorker: 2) { MicroBatchesLeft = 3 };
        h.S.AddRolloutWorker("a");
        h.S.AddRolloutWorker("b");
        h.S.AddRewardWorker("r");
        h.S.Pump(0, T0);
        var sent = h.Rollouts();
        Assert.Equal(3, sent.Count);

        // A scored rollout waiting for its update still counts against what the run has left.
        h.S.OnRollout(Answer(sent[0].R, 0), 0, T0);
        Assert.True(h.S.OnScore(Scored(sent[0].R.RequestId)));
        h.S.Pump(0, T0);
        Assert.Equal((3, 1), (h.Rollouts().Count, h.S.Ready));
        h.MicroBatchesLeft = 4;
        h.S.Pump(0, T0);
        Assert.Equal(4, h.Rollouts().Count);
    }

    [Fact]
    public void Sync_rollout_from_another_policy_version_is_sent_again_and_its_late_answer_ignored()
    {
        var h = new Harness(async: false);
        h.S.AddRolloutWorker("a");
        h.S.AddRewardWorker("r");
        h.S.AddSyncPart([1, 2], 0, 77, 0);
        h.S.Pump(1, T0);
        var first = h.Rollouts()[0].R;

        var work = h.S.OnRollout(Answer(first, version: 0), 1, T0.AddSeconds(3));
        Assert.NotNull(work);
        Assert.Equal(3, work.RolloutLatencyS);
        Assert.Contains(h.Warnings, w => w.Contains("came from v0, not v1"));
        Assert.Empty(h.Scores());
        h.S.Pump(1, T0.AddSeconds(3));
        var again = h.Rollouts()[1].R;
        Assert.Equal((2L, 77L, 1L), (again.RequestId, again.Seed, again.MinVersion));
        Assert.Null(h.S.OnRollout(Answer(first, 1), 1, T0.AddSeconds(4)));

        Assert.NotNull(h.S.OnRollout(Answer(again, 1), 1, T0.AddSeconds(5)));
        Assert.Equal(("r", 2L), (h.Scores()[0].To, h.Scores()[0].R.RequestId));
    }

    [Fact]
    public void Async_rollout_too_stale_on_arrival_is_dropped_and_drawn_again_with_a_new_seed()
    {
        var h = new Harness(async: true, inFlightPerWorker: 1, maxStaleness: 1);
        h.S.AddRolloutWorker("a");
        h.S.AddRewardWorker("r");
        h.MicroBatchesLeft = 1;
        h.S.Pump(0, T0);
        var first = h.Rollouts()[0].R;

        Assert.NotNull(h.S.OnRollout(Answer(first, version: 0), version: 2, T0));
        Assert.Equal(1, h.S.DroppedStale);
        Assert.Empty(h.Scores());
        h.S.Pump(2, T0);
        var again = h.Rollouts()[1].R;
        Assert.Equal(first.ImageIds.ToArray(), again.ImageIds.ToArray());
        Assert.Equal((2L, 1001L, 1L), (again.RequestId, again.Seed, again.MinVersion));

        // One version behind is within the bound: scored.
        h.S.OnRollout(Answer(again, version: 1), 2, T0);
        Assert.Single(h.Scores());
    }

    [Fact]
    public void Async_rollout_gone_stale_while_waiting_is_dropped_at_use_and_the_rest_used_in_arrival_order()
    {
        var h = new Harness(async: true, inFlightPerWorker: 3, maxStaleness: 1) { MicroBatchesLeft = 3 };
        h.S.AddRolloutWorker("a");
        h.S.AddRewardWorker("r");
        h.S.Pump(0, T0);
        var sent = h.Rollouts().Select(x => x.R).ToList();
        // Answered at version 1, out of order: sent[2] from v0, then sent[1] and sent[0] from v1.
        foreach (var (r, v) in new[] { (sent[2], 0L), (sent[1], 1L), (sent[0], 1L) })
        {
            h.S.OnRollout(Answer(r, v), 1, T0);
            Assert.True(h.S.OnScore(Scored(r.RequestId)));
        }
        Assert.Equal(3, h.S.Ready);

        Assert.Null(h.S.TakeUpdate(version: 2, microBatches: 3)); // sent[2] (v0) is now 2 behind
        Assert.Equal((1L, 2, 1), (h.S.DroppedStale, h.S.Ready, h.S.Queued));
        var used = h.S.TakeUpdate(2, 2);
        Assert.NotNull(used);
        Assert.Equal([sent[1].RequestId, sent[0].RequestId], used.Select(w => w.RequestId));
        Assert.Equal(0, h.S.Ready);
        h.S.Pump(2, T0);
        var redraw = h.Rollouts()[3].R; // queued before the top-up's fresh draws
        Assert.Equal(sent[2].ImageIds.ToArray(), redraw.ImageIds.ToArray());
        Assert.Equal(1003L, redraw.Seed);
    }

    [Fact]
    public void Sync_update_is_taken_only_when_every_part_is_scored_in_planned_order()
    {
        var h = new Harness(async: false);
        h.S.AddRolloutWorker("a");
        h.S.AddRewardWorker("r");
        Assert.Null(h.S.TakeUpdate(0, 2));
        h.S.AddSyncPart([1], 0, 1, micro: 0);
        h.S.AddSyncPart([2], 0, 2, micro: 1);
        Assert.True(h.S.HasSyncUpdate);
        h.S.Pump(0, T0);
        var sent = h.Rollouts().Select(x => x.R).ToList();
        h.S.OnRollout(Answer(sent[1], 0), 0, T0);
        h.S.OnScore(Scored(sent[1].RequestId));
        Assert.Null(h.S.TakeUpdate(0, 2));
        h.S.OnRollout(Answer(sent[0], 0), 0, T0);
        h.S.OnScore(Scored(sent[0].RequestId));

        var used = h.S.TakeUpdate(0, 2);
        Assert.NotNull(used);
        Assert.Equal([0, 1], used.Select(w => w.Micro));
        Assert.False(h.S.HasSyncUpdate);
        Assert.Equal(0, h.S.Ready);
    }

    [Fact]
    public void Unanswered_rollout_is_dispatched_again_after_the_timeout_and_its_late_answer_ignored()
    {
        var h = new Harness(async: false);
        h.S.AddRolloutWorker("a");
        h.S.AddSyncPart([1], 0, 9, 0);
        h.S.Pump(0, T0);
        h.S.AddRolloutWorker("b");
        h.S.AddSyncPart([2], 0, 8, 1);
        h.S.Pump(0, T0.AddSeconds(30));
        h.S.ResendOverdue(T0 + Timeout - TimeSpan.FromSeconds(1));
        Assert.Equal((0, 2), (h.S.Queued, h.S.InFlight));

        h.S.ResendOverdue(T0 + Timeout); // only request 1 (at a since 0 s) is overdue
        Assert.Equal(["learner: request 1 unanswered for 00:01:00; sending it elsewhere"], h.Warnings);
        Assert.Equal((1, 1, 0, 1), (h.S.Queued, h.S.InFlight, h.S.Load("a"), h.S.Load("b")));
        h.S.Pump(0, T0 + Timeout);
        // Withdrawn from a with its slot; a is the least loaded, but it let the request time out, so b takes it.
        var again = h.Rollouts()[2];
        Assert.Equal(("b", 3L, 9L), (again.To, again.R.RequestId, again.R.Seed));
        Assert.Equal((0, 2), (h.S.Load("a"), h.S.Load("b")));
        Assert.Null(h.S.OnRollout(Answer(h.Rollouts()[0].R, 0), 0, T0 + Timeout));
    }

    [Fact]
    public void A_worker_holds_exactly_its_unanswered_requests_through_resends_and_stale_drops()
    {
        // Sync: an answer from another version is sent again; the worker's slot is freed once, not twice.
        var sync = new Harness(async: false);
        sync.S.AddRolloutWorker("a");
        sync.S.AddSyncPart([1], 0, 9, 0);
        sync.S.AddSyncPart([2], 0, 8, 0);
        sync.S.Pump(4, T0);
        Assert.Equal(2, sync.S.Load("a"));
        sync.S.OnRollout(Answer(sync.Rollouts()[0].R, 3), 4, T0);
        Assert.Equal((1, 1), (sync.S.Load("a"), sync.S.Queued));
        sync.S.Pump(4, T0);
        Assert.Equal(2, sync.S.Load("a"));

        // Async: a rollout too stale on arrival, and one that goes stale while waiting for its update.
        var h = new Harness(async: true, inFlightPerWorker: 2, maxStaleness: 1);
        h.S.AddRolloutWorker("a");
        h.S.AddRewardWorker("r");
        h.S.Pump(5, T0);
        Assert.Equal(2, h.S.Load("a"));
        h.S.OnRollout(Answer(h.Rollouts()[0].R, 3), 5, T0);        // 2 versions behind: dropped, drawn again
        Assert.Equal((1, 1L), (h.S.Load("a"), h.S.DroppedStale));
        h.S.OnRollout(Answer(h.Rollouts()[1].R, 5), 5, T0);        // fresh: scored, then waits
        Assert.True(h.S.OnScore(Scored(h.Rollouts()[1].R.RequestId)));
        Assert.Equal(0, h.S.Load("a"));
        Assert.Null(h.S.TakeUpdate(7, 2));                          // now 2 behind at use: dropped again
        Assert.Equal((0, 2L), (h.S.Load("a"), h.S.DroppedStale));
        h.S.Pump(7, T0);
        Assert.Equal(2, h.S.Load("a"));                             // never more than InFlightPerWorker
    }

    [Fact]
    public void Unanswered_rollout_stays_with_the_only_rollout_worker()
    {
        var h = new Harness(async: false);
        h.S.AddRolloutWorker("a");
        h.S.AddSyncPart([1], 0, 9, 0);
        h.S.Pump(0, T0);
        h.S.ResendOverdue(T0 + 10 * Timeout);
        Assert.Empty(h.Warnings);
        Assert.Equal((0, 1), (h.S.Queued, h.S.InFlight));
        Assert.Single(h.Sent);
    }

    [Fact]
    public void Unanswered_score_goes_to_the_next_reward_worker_after_the_timeout()
    {
        var h = new Harness(async: false);
        h.S.AddRolloutWorker("a");
        h.S.AddRewardWorker("r1");
        h.S.AddRewardWorker("r2");
        h.S.AddSyncPart([1], 0, 9, 0);
        h.S.Pump(0, T0);
        h.S.OnRollout(Answer(h.Rollouts()[0].R, 0), 0, T0.AddSeconds(10));
        h.S.ResendOverdue(T0 + Timeout); // the score request went out at 10 s
        Assert.Single(h.Scores());

        h.S.ResendOverdue(T0.AddSeconds(10) + Timeout);
        Assert.Equal([("r1", 1L), ("r2", 1L)], h.Scores().Select(x => (x.To, x.R.RequestId)));
        Assert.True(h.S.OnScore(Scored(1)));
        Assert.False(h.S.OnScore(Scored(1)));
    }

    [Fact]
    public void Lost_rollout_worker_has_its_unanswered_rollouts_dispatched_to_the_others()
    {
        var h = new Harness(async: false);
        h.S.AddRolloutWorker("a");
        h.S.AddRolloutWorker("b");
        h.S.AddRewardWorker("r");
        for (var p = 0; p < 4; p++) h.S.AddSyncPart([p], 0, 20 + p, p);
        h.S.Pump(0, T0);
        var sent = h.Rollouts();
        h.S.OnRollout(Answer(sent[0].R, 0), 0, T0); // a's first one is answered and at the reward worker

        Assert.False(h.S.RemoveWorker("nobody", T0));
        Assert.True(h.S.RemoveWorker("a", T0));
        Assert.False(h.S.IsWorker("a"));
        Assert.Equal(["b"], h.S.RolloutWorkers);
        Assert.Equal(1, h.S.Queued); // sent[2]; sent[0] is rolled out already
        h.S.Pump(0, T0);
        var again = h.Rollouts()[4];
        Assert.Equal(("b", 5L, 22L), (again.To, again.R.RequestId, again.R.Seed));
    }

    [Fact]
    public void Lost_reward_worker_has_its_unscored_rollouts_sent_to_another_at_once()
    {
        var h = new Harness(async: false, localPool: "local");
        h.S.AddRolloutWorker("a");
        h.S.AddRewardWorker("r1");
        h.S.AddSyncPart([1], 0, 9, 0);
        h.S.Pump(0, T0);
        h.S.OnRollout(Answer(h.Rollouts()[0].R, 0), 0, T0);
        Assert.True(h.S.RemoveWorker("r1", T0.AddSeconds(5)));
        Assert.Equal(["r1", "local"], h.Scores().Select(x => x.To));

        // The re-sent request is timed from its new start.
        h.S.AddRewardWorker("r2");
        h.S.ResendOverdue(T0 + Timeout);
        Assert.Equal(2, h.Scores().Count);
    }

    [Fact]
    public void Reward_workers_take_turns_and_the_local_pool_scores_while_there_are_none()
    {
        var h = new Harness(async: false, localPool: "local");
        h.S.AddRolloutWorker("a");
        Assert.True(h.S.CanScore);
        for (var p = 0; p < 4; p++) h.S.AddSyncPart([p], 0, p, p);
        h.S.Pump(0, T0);
        var sent = h.Rollouts();
        h.S.OnRollout(Answer(sent[0].R, 0), 0, T0);
        h.S.AddRewardWorker("r1");
        h.S.AddRewardWorker("r2");
        for (var i = 1; i < 4; i++) h.S.OnRollout(Answer(sent[i].R, 0), 0, T0);
        Assert.Equal(["local", "r1", "r2", "r1"], h.Scores().Select(x => x.To));
    }

    [Fact]
    public void Without_any_reward_worker_the_rollout_waits_and_the_overdue_check_retries()
    {
        var h = new Harness(async: false);
        h.S.AddRolloutWorker("a");
        Assert.False(h.S.CanScore);
        h.S.AddSyncPart([1], 0, 9, 0);
        h.S.Pump(0, T0);
        h.S.OnRollout(Answer(h.Rollouts()[0].R, 0), 0, T0.AddSeconds(1));
        Assert.Contains("learner: no reward worker yet", h.Warnings);
        Assert.Empty(h.Scores());

        h.S.AddRewardWorker("r");
        h.S.ResendOverdue(T0 + Timeout); // timed from the rollout dispatch: no score request ever went out
        Assert.Equal(("r", 1L), (h.Scores()[0].To, h.Scores()[0].R.RequestId));
    }

    [Fact]
    public void Pending_lists_work_out_then_queued_then_ready_and_leaves_out_the_used()
    {
        var h = new Harness(async: true, inFlightPerWorker: 2) { MicroBatchesLeft = 100 };
        h.S.AddRolloutWorker("a");
        h.S.AddRewardWorker("r");
        h.S.Pump(0, T0);
        var sent = h.Rollouts().Select(x => x.R).ToList(); // [0,1] and [2,3] at a
        foreach (var r in sent)
        {
            h.S.OnRollout(Answer(r, 0), 0, T0);
            h.S.OnScore(Scored(r.RequestId));
        }
        h.S.AddCarried([90, 91], epoch: 3);                          // queued: no free worker slot yet
        h.S.Pump(0, T0);                                             // [90,91] and a fresh [4,5] go out
        h.S.AddCarried([80], epoch: 2);                              // stays queued: the window is full
        var used = h.S.TakeUpdate(0, 1)!;

        // Out at workers in the request table's order (a Dictionary: requests 3 and 4 took the slots 2 and 1 freed, last
        // freed first), then queued, then ready. The journal of the actor learner has always listed them so; kept exactly.
        var pending = h.S.Pending(used);
        Assert.Equal(["4,5", "90,91", "80", "2,3"], pending.Select(w => string.Join(",", w.Ids)));
        Assert.Equal([0, 3, 2, 0], pending.Select(w => w.Epoch));
        var ev = LearnerJournalState.StepEvent(0, 0, 6, [.. used.Select(w => (w.Epoch, w.Ids))], [.. pending.Select(w => (w.Epoch, w.Ids))], h.S.DroppedStale);
        Assert.Equal([2, 2, 1, 2], ev.PendingSizes.ToArray());
        Assert.Equal([4, 5, 90, 91, 80, 2, 3], ev.PendingIds.ToArray());
        Assert.Equal([0, 1], ev.ImageIds.ToArray());
    }

    [Fact]
    public void Carried_work_and_async_draws_share_one_seed_serial()
    {
        var h = new Harness(async: true, inFlightPerWorker: 1) { MicroBatchesLeft = 100 };
        h.S.AddCarried([7], 0);
        h.S.AddCarried([8], 0);
        h.S.AddRolloutWorker("a");
        h.S.AddRolloutWorker("b");
        h.S.Pump(0, T0);
        Assert.Equal(["7@1000", "8@1001"], h.Rollouts().Select(x => $"{string.Join(",", x.R.ImageIds)}@{x.R.Seed}"));
        h.S.AddRolloutWorker("c");
        h.S.Pump(0, T0);
        Assert.Equal(1002L, h.Rollouts()[2].R.Seed);
    }

    [Fact]
    public void Answers_twice_or_to_unknown_requests_are_ignored()
    {
        var h = new Harness(async: false);
        h.S.AddRolloutWorker("a");
        h.S.AddRewardWorker("r");
        h.S.AddSyncPart([1], 0, 9, 0);
        h.S.Pump(0, T0);
        var req = h.Rollouts()[0].R;
        Assert.False(h.S.OnScore(Scored(req.RequestId))); // no rollout yet
        Assert.NotNull(h.S.OnRollout(Answer(req, 0), 0, T0));
        Assert.Null(h.S.OnRollout(Answer(req, 0), 0, T0));
        Assert.Null(h.S.OnRollout(Answer(req with { RequestId = 99 }, 0), 0, T0));
        Assert.Single(h.Scores());
        Assert.True(h.S.OnScore(Scored(req.RequestId)));
        Assert.False(h.S.OnScore(Scored(req.RequestId)));
        Assert.False(h.S.OnScore(Scored(99)));
    }
}
