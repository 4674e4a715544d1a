using Scst.Training;

namespace Scst.Training.Tests;

public class UpdateLogTests
{
    [Theory]
    [InlineData(50, 50, true)]
    [InlineData(100, 50, true)]
    [InlineData(49, 50, false)]
    [InlineData(51, 50, false)]
    [InlineData(1, 1, true)]
    [InlineData(0, 50, false)]   // before the first update
    [InlineData(50, 0, false)]   // log_freq 0: never
    [InlineData(50, -1, false)]
    public void Due_every_nth_update(long update, int every, bool due) => Assert.Equal(due, UpdateLog.Due(update, every));

    [Fact]
    public void Scst_line_with_a_greedy_baseline()
    {
        var values = new Dictionary<string, double>
        {
            ["loss"] = 0.0123, ["reward_mean"] = 1.234, ["baseline_mean"] = 1.1, ["greedy_reward_mean"] = 1.1,
            ["advantage_std"] = 0.3125, ["caption_length"] = 9.2, ["lr"] = 1e-5, ["grad_norm"] = 0.8, ["entropy"] = 2.5,
        };
        Assert.Equal("scst update 120/400 | loss 0.0123 | reward 1.234 (greedy 1.1) | adv std 0.3125 | len 9.2 | lr 1.0e-05 | grad 0.8 | 2.1 s/update",
            UpdateLog.Line("scst", 120, 400, values, 2.1));
    }

    [Fact]
    public void Scst_line_of_the_actor_learner_shows_staleness_and_no_baseline_equal_to_the_reward()
    {
        // Leave-one-out: baseline_mean == reward_mean, so the line leaves it out.
        var values = new Dictionary<string, double>
        {
            ["loss"] = -0.5, ["reward_mean"] = 0.75, ["baseline_mean"] = 0.75, ["advantage_std"] = 0.25,
            ["caption_length"] = 12, ["staleness_mean"] = 0.5, ["lr"] = 2.5e-4,
        };
        Assert.Equal("scst update 7/10 | loss -0.5 | reward 0.75 | adv std 0.25 | len 12 | stale 0.5 | lr 2.5e-04 | 0.147 s/update",
            UpdateLog.Line("scst", 7, 10, values, 0.147));
    }

    [Fact]
    public void Ce_line_shows_loss_lr_and_grad_norm()
    {
        var values = new Dictionary<string, double> { ["loss"] = 4.56789, ["lr"] = 1e-4, ["grad_norm"] = 12.5 };
        Assert.Equal("ce update 50/1000 | loss 4.568 | lr 1.0e-04 | grad 12.5 | 0.25 s/update", UpdateLog.Line("ce", 50, 1000, values, 0.25));
    }

    [Fact]
    public void Tiny_large_and_missing_values_stay_readable()
    {
        var values = new Dictionary<string, double> { ["loss"] = 0.00001234, ["grad_norm"] = 12345.6, ["lr"] = double.NaN };
        // Unknown total, no timing yet, NaN left out.
        Assert.Equal("ce update 3 | loss 1.2e-05 | grad 12346", UpdateLog.Line("ce", 3, 0, values, double.NaN));
        Assert.Equal("ce update 3/9 | loss 0", UpdateLog.Line("ce", 3, 9, new Dictionary<string, double> { ["loss"] = 0 }, 0));
    }
}
