using Microsoft.Extensions.Logging.Abstractions;
using Scst.Model;
using static TorchSharp.torch;

namespace Scst.Training.Tests;

/// <summary>
/// The non-finite guard's pieces in one process: the optimizer step refuses a NaN gradient (a finite loss can still
/// give one), the guard's counting and stop, and the fault-injection variable's syntax. The end-to-end runs (injected
/// NaN losses in both drivers, resume and replay) are Scst.Host.Tests' NonfiniteGuardTests.
/// </summary>
public class NonfiniteGuardUnitTests(TinyShapes shapes) : IClassFixture<TinyShapes>
{
    [Theory]
    [InlineData("")]        // max_grad_norm 0: the norm is taken only for the check
    [InlineData("  max_grad_norm: 1.0")]
    public void A_nan_gradient_takes_no_optimizer_step_and_clears_the_gradients(string clip)
    {
        var config = shapes.CeWithRun($"""
              max_iters: 4
              batch_size_train: 4
              init_lr: 1e-3
            {clip}
            """);
        using var trainer = TinyShapes.Trainer(config, new Scst.Training.TrainerOptions(shapes.RunDir("nan-grad-" + clip.Length)));
        var (model, opt) = (trainer.Learner.Policy.Model, trainer.Learner.Optimization);
        var before = model.parameters().Select(p => p.detach().clone()).ToList();
        var steps = opt.State().Scalars.Steps.ToDictionary();

        // A real backward whose loss is NaN: every gradient is NaN.
        using (var scope = NewDisposeScope())
            (model.parameters().Select(p => p.sum()).Aggregate((a, b) => a.add(b, Scalars.One)) * Scalars.Of(double.NaN)).backward();
        var (_, norm) = opt.Step(0, 0);
        Assert.Equal("gradient norm", opt.LastSkip);
        Assert.True(double.IsNaN(norm));
        Assert.All(model.parameters().Zip(before), x => Assert.True(x.Item1.detach().allclose(x.Item2, 0, 0)));
        Assert.All(model.parameters(), p => Assert.True(p.grad is null || p.grad.abs().sum().item<float>() == 0));
        Assert.Equal(steps, opt.State().Scalars.Steps.ToDictionary()); // AdamW's step counts did not move

        // A finite gradient steps again and clears the flag.
        using (var scope = NewDisposeScope())
            model.parameters().Select(p => p.sum()).Aggregate((a, b) => a.add(b, Scalars.One)).backward();
        opt.Step(1, 0);
        Assert.Null(opt.LastSkip);
        Assert.Contains(model.parameters().Zip(before), x => !x.Item1.detach().allclose(x.Item2, 0, 0));

        // A loss the caller saw to be non-finite: no step, whatever the gradients.
        using (var scope = NewDisposeScope())
            model.parameters().Select(p => p.sum()).Aggregate((a, b) => a.add(b, Scalars.One)).backward();
        var mid = model.parameters().Select(p => p.detach().clone()).ToList();
        opt.Step(2, 0, "loss");
        Assert.Equal("loss", opt.LastSkip);
        Assert.All(model.parameters().Zip(mid), x => Assert.True(x.Item1.detach().allclose(x.Item2, 0, 0)));
    }

    [Fact]
    public void The_guard_counts_skips_resets_on_an_applied_update_and_stops_at_max_in_a_row()
    {
        var g = new NonfiniteGuard(3);
        var row = new Dictionary<string, double>();
        g.Count(1, "loss", row, NullLogger.Instance);
        g.Count(2, "loss", row, NullLogger.Instance);
        Assert.Null(g.Exhausted(2));
        g.Count(3, null, row, NullLogger.Instance);
        Assert.Equal(0, g.InARow);
        Assert.Equal(2, row[NonfiniteGuard.MetricKey]);
        g.Count(4, "reward", row, NullLogger.Instance);
        g.Count(5, "gradient norm", row, NullLogger.Instance);
        Assert.Null(g.Exhausted(5));
        g.Count(6, "loss", row, NullLogger.Instance);
        var stop = g.Exhausted(6);
        Assert.NotNull(stop);
        Assert.Equal("stopped at update 6: 3 updates in a row had a non-finite loss (run.max_nonfinite: 3); the weights are those of update 3. " +
                     "Lower run.init_lr or set run.max_grad_norm, then resume (train --resume; the actor learner: the same command)", stop!.Message);
        Assert.Equal(5, g.Skipped);
    }

    [Fact]
    public void The_injection_variable_takes_update_numbers_and_ranges_and_refuses_anything_else_in_one_line()
    {
        Assert.Equal([(3L, 3L), (7L, 9L)], FaultInjection.ParseUpdates(" 3, 7-9 "));
        Assert.Empty(FaultInjection.ParseUpdates(null));
        Assert.Empty(FaultInjection.ParseUpdates(""));
        foreach (var bad in new[] { "0", "x", "3-1", "-2", "1.5", "2-" })
        {
            var e = Assert.Throws<InvalidOperationException>(() => FaultInjection.ParseUpdates(bad));
            Assert.StartsWith("SCST_INJECT_NONFINITE: '", e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
    }
}
