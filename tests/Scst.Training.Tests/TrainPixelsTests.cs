using Microsoft.Extensions.Logging.Abstractions;
using Scst.Training;
using Scst.Model.Data.Transforms;
using static TorchSharp.torch;

namespace Scst.Training.Tests;

/// <summary>CE batches go through the train transform, drawn per (seed, epoch, image); evaluation and SCST do not.</summary>
public class TrainPixelsTests(TinyShapes shapes) : IClassFixture<TinyShapes>
{
    private static float[] Data(Tensor t) => t.data<float>().ToArray();

    [Fact]
    public void Ce_pixels_are_augmented_and_reproduced_by_a_fresh_corpus()
    {
        Scst.Model.TorchRuntime.Initialize();
        var config = shapes.Ce();
        Assert.Equal(VisProcessorOptions.BlipImageTrain, config.Datasets["shapes"].TrainVisProcessor!.Name); // LAVIS's default
        var a = CaptionCorpus.Load(config, NullLogger.Instance);
        var batch = new[] { 3, 0, 7, 11 };
        using var eval = a.Train.Pixels(batch, CPU);
        using var e1 = a.Train.TrainPixels(batch, 1, CPU);
        Assert.NotEqual(Data(eval), Data(e1));
        // A resumed run builds a new corpus: the same (seed, epoch, image) gives the same pixels, in any batch order.
        var b = CaptionCorpus.Load(config, NullLogger.Instance);
        using var again = b.Train.TrainPixels([11, 3], 1, CPU);
        Assert.Equal(Data(e1[3]), Data(again[0]));
        Assert.Equal(Data(e1[0]), Data(again[1]));
        // Another epoch draws again.
        using var e2 = b.Train.TrainPixels(batch, 2, CPU);
        Assert.NotEqual(Data(e1), Data(e2));
        // Evaluation splits never augment.
        Assert.Equal(VisProcessorOptions.BlipImageEval, a.Val.TrainProcessor.Name);
    }

    [Fact]
    public void Scst_runs_keep_the_eval_pixels()
    {
        Scst.Model.TorchRuntime.Initialize();
        var config = shapes.Scst(finetuned: Path.Combine(shapes.Root, "none.safetensors"));
        var corpus = CaptionCorpus.Load(config, NullLogger.Instance);
        Assert.Equal(VisProcessorOptions.BlipImageEval, corpus.Train.TrainProcessor.Name);
        using var eval = corpus.Train.Pixels([1, 2], CPU);
        using var train = corpus.Train.TrainPixels([1, 2], 4, CPU);
        Assert.Equal(Data(eval), Data(train));
    }
}
