using System.Text.Json;
using Scst.Training.Configuration;
using Scst.Training;
using Scst.Host.Configuration;

namespace Scst.Training.Tests;

/// <summary>
/// <see cref="UpdatePlan"/> against LAVIS's loop: tests/data/schedules/lavis_schedules.py runs LAVIS's schedulers and
/// _train_inner_loop (typed from the source) and records, per optimizer step, the rate in effect, the (epoch, step)
/// the scheduler was last stepped with and how many micro-batches' gradients the step applies.
/// </summary>
public class UpdatePlanTests
{
    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Scst.Actors.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"no Scst.Actors.sln above {AppContext.BaseDirectory}");
    }

    internal static RunOptions Run(string runYaml) => ConfigLoader.Parse($"""
        datasets:
          shapes:
            build_info:
              images: /nonexistent
        run:
        {runYaml}
        """, "plan.yaml").Run;

    public static IEnumerable<object[]> Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot(), "tests", "data", "schedules", "lavis_schedules.json")));
        foreach (var c in doc.RootElement.EnumerateArray()) yield return [c.GetProperty("config").GetProperty("name").GetString()!, c.GetRawText()];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_update_has_lavis_rate_micro_batches_and_schedule_position(string name, string caseJson)
    {
        using var doc = JsonDocument.Parse(caseJson);
        var c = doc.RootElement.GetProperty("config");
        string N(string key) => c.GetProperty(key).GetRawText();
        var runner = c.GetProperty("runner").GetString()!;
        var length = runner == "runner_base"
            ? $"  max_epoch: {N("max_epoch")}"
            : $"  max_iters: {N("max_iters")}\n  iters_per_inner_epoch: {N("iters_per_inner_epoch")}";
        var run = Run($"""
              runner: {runner}
            {length}
              lr_sched: {c.GetProperty("lr_sched").GetString()}
              init_lr: {N("init_lr")}
              min_lr: {N("min_lr")}
              warmup_lr: {N("warmup_lr")}
              warmup_steps: {N("warmup_steps")}
              lr_decay_rate: {N("lr_decay_rate")}
              batch_size_train: {N("batch_size_train")}
              accum_grad_iters: {N("accum_grad_iters")}
            """);
        var plan = UpdatePlan.Create(run, c.GetProperty("train_samples").GetInt32());
        var scheduler = plan.Scheduler(run, null);
        var updates = doc.RootElement.GetProperty("updates").EnumerateArray().ToList();
        Assert.Equal(updates.Count, plan.TotalUpdates);
        long before = 0;
        for (var u = 0; u < updates.Count; u++)
        {
            var x = updates[u];
            var (epoch, step) = plan.ScheduleStep(u, dataEpoch: -1); // the runners never read the data epoch
            Assert.Equal((x.GetProperty("epoch").GetInt32(), x.GetProperty("step").GetInt32()), (epoch, step));
            Assert.Equal(x.GetProperty("lr").GetDouble(), scheduler.LearningRate(epoch, step), 15);
            Assert.Equal(x.GetProperty("micro_batches").GetInt32(), plan.MicroBatches(u));
            Assert.Equal(before, plan.MicroBatchesBefore(u));
            before += plan.MicroBatches(u);
        }
        Assert.Equal(before, plan.TotalMicroBatches);
        Assert.True(plan.DropLast, name);
    }

    [Fact]
    public void Runner_iter_runs_whole_inner_epochs_and_schedules_over_the_floor()
    {
        // LAVIS: range(0, 10, 4) gives 3 inner epochs of 4 iterations (12 > max_iters), max_epoch = int(10 / 4) = 2.
        var plan = UpdatePlan.Create(Run("  runner: runner_iter\n  max_iters: 10\n  iters_per_inner_epoch: 4\n  batch_size_train: 2"), 100);
        Assert.Equal(12, plan.TotalUpdates);
        Assert.Equal(2, plan.ScheduleMaxEpoch);
        Assert.Equal((2, 3), plan.ScheduleStep(11, 0));
    }

    [Fact]
    public void Without_a_runner_updates_and_rates_are_counted_as_before()
    {
        // max_iters counts updates; the schedule's (epoch, step) is counted in updates per iters_per_inner_epoch.
        var plan = UpdatePlan.Create(Run("  max_iters: 10\n  iters_per_inner_epoch: 4\n  batch_size_train: 4\n  accum_grad_iters: 2"), 37);
        Assert.Equal(10, plan.TotalUpdates);
        Assert.Equal(3, plan.ScheduleMaxEpoch);
        Assert.Equal((2, 1), plan.ScheduleStep(9, 0));
        Assert.Equal(2, plan.MicroBatches(4));
        Assert.False(plan.DropLast);
        Assert.Equal(10, plan.IterationsPerEpoch); // ⌈37 / 4⌉ micro-batches per data epoch, the last one short
        // max_epoch: the data cursor's epoch and the update within an epoch of max(1, ⌊10 / 2⌋) updates.
        var byEpoch = UpdatePlan.Create(Run("  max_epoch: 3\n  batch_size_train: 4\n  accum_grad_iters: 2"), 37);
        Assert.Equal(15, byEpoch.TotalUpdates);
        Assert.Equal((1, 3), byEpoch.ScheduleStep(8, dataEpoch: 1));
    }

    [Fact]
    public void A_plan_that_never_steps_is_refused_naming_the_key()
    {
        var e = Assert.Throws<InvalidDataException>(() =>
            UpdatePlan.Create(Run("  runner: runner_base\n  max_epoch: 1\n  batch_size_train: 4\n  accum_grad_iters: 3"), 11));
        Assert.Contains("run.batch_size_train", e.Message);
        e = Assert.Throws<InvalidDataException>(() =>
            UpdatePlan.Create(Run("  runner: runner_iter\n  max_iters: 8\n  iters_per_inner_epoch: 2\n  accum_grad_iters: 3"), 100));
        Assert.Contains("run.iters_per_inner_epoch", e.Message);
    }

    [Fact]
    public void A_drop_last_cursor_skips_the_partial_batch_and_resumes_where_it_stood()
    {
        var c = new DataCursor(10, seed: 3, dropLast: true);
        var epoch0 = Enumerable.Range(0, 3).SelectMany(_ => c.Next(3)).ToArray();
        Assert.Equal(DataCursor.EpochOrder(10, 3, 0)[..9], epoch0);
        Assert.Equal(DataCursor.EpochOrder(10, 3, 1)[..3], c.Next(3));
        Assert.Equal(1, c.Epoch);
        var resumed = new DataCursor(10, 3, epoch: 0, position: 9, dropLast: true);
        Assert.Equal(DataCursor.EpochOrder(10, 3, 1)[..3], resumed.Next(3));
        Assert.Equal(string.Join(",", DataCursor.EpochOrder(10, 3, 0)[9..]), string.Join(",", new DataCursor(10, 3, 0, 9).Next(3)));
    }
}
