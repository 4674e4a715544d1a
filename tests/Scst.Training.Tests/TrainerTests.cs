using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Scst.Training;

namespace Scst.Training.Tests;

/// <summary>End-to-end CE → SCST on a tiny configuration, resume exactness, and refusal of bad state.</summary>
public class TrainerTests(TinyShapes shapes) : IClassFixture<TinyShapes>
{
    [Fact]
    public void CeThenScstWritesSummaryCheckpointsAndMetrics()
    {
        var ceDir = shapes.RunDir("e2e-ce");
        var (_, ce) = TinyShapes.Train(shapes.Ce(), new TrainerOptions(ceDir));
        Assert.Equal("ce", ce.Mode);
        Assert.Equal(6, ce.Updates);
        Assert.Equal(48, ce.SamplesConsumed); // 6 updates × batch 8 (image, caption) annotations
        Assert.True(ce.Completed);
        Assert.Equal(CheckpointStore.Sha256Of(ce.FinalCheckpoint), ce.FinalCheckpointSha256);
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(ceDir, "summary.json")))!;
        foreach (var split in new[] { "val", "test" })
            foreach (var m in new[] { "CIDEr", "Bleu_4", "ROUGE_L" })
                Assert.True(summary["metrics"]![split]![m]!.GetValue<double>() >= 0);
        Assert.Equal(ce.FinalCheckpointSha256, summary["final_checkpoint_sha256"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(ceDir, "checkpoints", "best.json")));

        var scstDir = shapes.RunDir("e2e-scst");
        var sink = new TinyShapes.NullSink();
        using (var t = new CaptionTrainer(shapes.Scst(Path.Combine(ceDir, "checkpoints", "best.json")), new TrainerOptions(scstDir), sink, NullLogger.Instance))
        {
            var s = t.Run();
            Assert.Equal("scst", s.Mode);
            Assert.Equal(4, s.Updates);
            Assert.Equal("leave_one_out", s.Settings["baseline"]);
            Assert.Equal(false, s.Settings["reward_counts_eos"]);
        }
        var scstRows = sink.Rows.Where(r => r.Phase == "scst").ToList();
        Assert.Equal(4, scstRows.Count);
        foreach (var key in new[] { "loss", "reward_mean", "baseline_mean", "advantage_std", "entropy", "caption_length", "lr" })
            Assert.All(scstRows, r => Assert.True(double.IsFinite(r.Values[key]), key));
        // Leave-one-out advantages sum to zero per image, so the mean baseline equals the mean reward.
        Assert.All(scstRows, r => Assert.Equal(r.Values["reward_mean"], r.Values["baseline_mean"], 9));
    }

    [Theory]
    [InlineData("ce")]
    [InlineData("scst")]
    public void StoppedAndResumedRunEndsWithTheSameWeights(string mode)
    {
        var ceConfig = shapes.Ce(iters: 6);
        var scstBase = mode == "scst" ? Path.Combine(shapes.RunDir("resume-base"), "checkpoints", "best.json") : null;
        if (scstBase is not null && !File.Exists(scstBase)) TinyShapes.Train(shapes.Ce(iters: 3), new TrainerOptions(shapes.RunDir("resume-base")));
        var config = mode == "ce" ? ceConfig : shapes.Scst(scstBase!, iters: 6);

        var (straight, s1) = TinyShapes.Train(config, new TrainerOptions(shapes.RunDir($"straight-{mode}")));
        var split = shapes.RunDir($"split-{mode}");
        var (_, partial) = TinyShapes.Train(config, new TrainerOptions(split, StopAfterUpdates: 3));
        Assert.False(partial.Completed);
        Assert.Equal(3, partial.Updates);
        var (resumed, s2) = TinyShapes.Train(config, new TrainerOptions(split, Resume: true));

        Assert.Equal(s1.Updates, s2.Updates);
        Assert.Equal(s1.SamplesConsumed, s2.SamplesConsumed);
        Assert.True(TinyShapes.MaxAbsDiff(straight, resumed) <= 1e-6);
        Assert.Equal(s1.Metrics["test"]["CIDEr"], s2.Metrics["test"]["CIDEr"], 9);
    }

    [Fact]
    public void ResumingFromACorruptCheckpointIsRefused()
    {
        var dir = shapes.RunDir("corrupt");
        TinyShapes.Train(shapes.Ce(iters: 6), new TrainerOptions(dir, StopAfterUpdates: 2));
        var latest = new CheckpointStore(Path.Combine(dir, "checkpoints")).Find("latest")!;
        var file = Path.Combine(dir, "checkpoints", latest.File);
        var bytes = File.ReadAllBytes(file);
        bytes[^10] ^= 0xFF;
        File.WriteAllBytes(file, bytes);
        var e = Assert.Throws<InvalidDataException>(() => TinyShapes.Train(shapes.Ce(iters: 6), new TrainerOptions(dir, Resume: true)));
        Assert.Contains("SHA-256", e.Message);
        Assert.Contains(latest.File, e.Message);
    }

    [Fact]
    public void StartingOverAnExistingRunNeedsResume()
    {
        var dir = shapes.RunDir("exists");
        TinyShapes.Train(shapes.Ce(iters: 6), new TrainerOptions(dir, StopAfterUpdates: 1));
        var e = Assert.Throws<InvalidOperationException>(() => TinyShapes.Train(shapes.Ce(iters: 6), new TrainerOptions(dir)));
        Assert.Contains("--resume", e.Message);
    }

    [Fact]
    public void ScstFromACheckpointWithoutItsTokenizerIsRefused()
    {
        var dir = shapes.RunDir("no-tokenizer");
        TinyShapes.Train(shapes.Ce(iters: 3), new TrainerOptions(dir));
        File.Delete(Path.Combine(dir, "checkpoints", "tokenizer.json"));
        var e = Assert.Throws<FileNotFoundException>(() =>
            TinyShapes.Train(shapes.Scst(Path.Combine(dir, "checkpoints", "best.json")), new TrainerOptions(shapes.RunDir("no-tokenizer-scst"))));
        Assert.Contains("tokenizer.json", e.Message);
    }

    [Fact]
    public void MissingImagesAreListed()
    {
        var copy = shapes.RunDir("missing-data");
        CopyDirectory(shapes.DataDir, copy);
        var gone = Directory.GetFiles(Path.Combine(copy, "images")).Order().Take(2).ToList();
        foreach (var g in gone) File.Delete(g);
        var config = shapes.Ce();
        config = config with { Datasets = config.Datasets.ToDictionary(kv => kv.Key, kv => kv.Value with { Images = copy }) };
        var e = Assert.Throws<Scst.Model.Data.MissingImagesException>(() => TinyShapes.Train(config, new TrainerOptions(shapes.RunDir("missing-run"))));
        Assert.Contains(Path.GetFileName(gone[0]), e.Message);
        Assert.Contains("2 of", e.Message);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(d.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(f, f.Replace(from, to));
    }
}
