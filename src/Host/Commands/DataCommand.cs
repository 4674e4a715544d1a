using System.CommandLine;
using System.Diagnostics;
using Scst.Model.Data.Shapes;
using Spectre.Console;

namespace Scst.Host.Commands;

public static class DataCommand
{
    public static Command Create()
    {
        var cmd = new Command("data", "Prepare datasets");
        cmd.Subcommands.Add(CreateSynth());
        return cmd;
    }

    private static Command CreateSynth()
    {
        var defaults = new ShapesDatasetOptions();
        var outOpt = new Option<string>("--out") { Description = "Output folder (dataset_coco.json, images/, annotations/)", Required = true };
        var seedOpt = new Option<int>("--seed") { Description = "Random seed; same seed, same dataset", DefaultValueFactory = _ => defaults.Seed };
        var trainOpt = new Option<int>("--train") { Description = "Training images", DefaultValueFactory = _ => defaults.Train };
        var valOpt = new Option<int>("--val") { Description = "Validation images", DefaultValueFactory = _ => defaults.Val };
        var testOpt = new Option<int>("--test") { Description = "Test images", DefaultValueFactory = _ => defaults.Test };
        var sizeOpt = new Option<int>("--image-size") { Description = "Image side in pixels", DefaultValueFactory = _ => defaults.ImageSize };
        var cmd = new Command("synth", "Write the built-in synthetic shapes captioning dataset in Karpathy's COCO format")
        {
            outOpt, seedOpt, trainOpt, valOpt, testOpt, sizeOpt,
        };
        cmd.SetAction(parseResult =>
        {
            var options = new ShapesDatasetOptions(
                Seed: parseResult.GetValue(seedOpt),
                Train: parseResult.GetValue(trainOpt),
                Val: parseResult.GetValue(valOpt),
                Test: parseResult.GetValue(testOpt),
                ImageSize: parseResult.GetValue(sizeOpt));
            var outDir = parseResult.GetValue(outOpt)!;
            if (options.Train < 0 || options.Val < 0 || options.Test < 0 || options.ImageSize < 16)
            {
                Console.Error.WriteLine("error: split sizes must be non-negative and --image-size at least 16.");
                return 2;
            }
            var total = options.Train + options.Val + options.Test;
            var sw = Stopwatch.StartNew();
            ShapesDatasetSummary? summary = null;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("rendering shapes", maxValue: Math.Max(1, total));
                    summary = ShapesDatasetWriter.Write(outDir, options, new SynchronousProgress(task));
                    task.Value = task.MaxValue;
                });
            AnsiConsole.MarkupLineInterpolated(
                $"wrote [bold]{summary!.Images}[/] images and {summary.Captions} captions ({summary.VocabularySize} distinct words, at most {summary.MaxCaptionWords} per caption) to {summary.DatasetJson} in {sw.Elapsed.TotalSeconds:F1} s");
            return 0;
        });
        return cmd;
    }

    // Progress<T> posts to the thread pool and may report out of order; the bar only moves forward.
    private sealed class SynchronousProgress(ProgressTask task) : IProgress<int>
    {
        public void Report(int value)
        {
            lock (task) if (value > task.Value) task.Value = value;
        }
    }
}
