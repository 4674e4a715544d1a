using Scst.Training;
using Scst.Model;

namespace Scst.Training.Tests;

/// <summary><c>model.use_grad_checkpoint</c> through the trainer: set on the model it builds, and the same training.</summary>
public class GradCheckpointRunTests(TinyShapes shapes) : IClassFixture<TinyShapes>
{
    [Fact]
    public void ACeRunWithCheckpointingEndsWithTheSameWeights()
    {
        var plain = shapes.Ce(iters: 4);
        var ckpt = plain with { Model = plain.Model with { UseGradCheckpoint = true } };
        using (var t = TinyShapes.Trainer(ckpt, new TrainerOptions(shapes.RunDir("gc-probe"))))
            Assert.True(t.Learner.Policy.Model.UseGradCheckpoint);
        var (a, _) = TinyShapes.Train(plain, new TrainerOptions(shapes.RunDir("gc-off")));
        var before = ActivationCheckpoint.Recomputed;
        var (b, _) = TinyShapes.Train(ckpt, new TrainerOptions(shapes.RunDir("gc-on")));
        Assert.True(ActivationCheckpoint.Recomputed - before >= 4 * 4, "the checkpointed run recomputed no blocks"); // 4 blocks × 4 updates at least
        // Dropout is off in the tiny config (the trainer does not seed torch's global generator): bitwise the same run.
        Assert.Equal(0.0, TinyShapes.MaxAbsDiff(a, b));
    }
}
