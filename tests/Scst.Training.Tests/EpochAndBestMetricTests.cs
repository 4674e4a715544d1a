using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Scst.Training;

namespace Scst.Training.Tests;

/// <summary>CE epochs over captions or images, LAVIS's runners in a real run, and the validation metric that ranks checkpoints.</summary>
public class EpochAndBestMetricTests(TinyShapes shapes) : IClassFixture<TinyShapes>
{
    private const string Common = """
          lr_sched: linear_warmup_cosine_lr
          init_lr: 3e-3
          min_lr: 1e-4
          warmup_lr: 1e-5
          warmup_steps: 2
          batch_size_eval: 12
          max_grad_norm: 1.0
          max_len: 12
          num_beams: 1
          seed: 5
          threads: 1
        """;

    private Scst.Training.Configuration.ScstConfig Ce(string run) => shapes.CeWithRun(Common + "\n" + run);

    [Fact]
    public void A_caption_epoch_visits_every_annotation_once_and_an_image_epoch_every_image()
    {
        using var byCaption = TinyShapes.Trainer(Ce("  max_epoch: 1\n  batch_size_train: 7"), new TrainerOptions(shapes.RunDir("unit-caption")));
        var refs = byCaption.Learner.Corpus.Train.References;
        var all = refs.SelectMany((r, i) => r.Select(c => (i, c))).OrderBy(x => x).ToList();
        Assert.Equal(all.Count, byCaption.Learner.TrainSamples);
        Assert.True(all.Count > refs.Count);
        var cursor = byCaption.Learner.NewCursor();
        var seen = new List<(int, string)>();
        while (cursor.Epoch == 0 && cursor.Position < cursor.Size)
        {
            var batch = cursor.Next(7);
            var (images, captions) = byCaption.Learner.Ce!.Samples(batch, cursor.Epoch);
            seen.AddRange(images.Zip(captions));
        }
        Assert.Equal(all, seen.OrderBy(x => x).ToList());

        using var byImage = TinyShapes.Trainer(Ce("  max_epoch: 1\n  batch_size_train: 7\n  ce_sample_unit: image"), new TrainerOptions(shapes.RunDir("unit-image")));
        Assert.Equal(refs.Count, byImage.Learner.TrainSamples);
        Assert.False(byImage.Learner.Ce!.ByCaption);
        var c2 = byImage.Learner.NewCursor();
        var images2 = new List<int>();
        while (c2.Position < c2.Size) images2.AddRange(byImage.Learner.Ce!.Samples(c2.Next(7), 0).Images);
        Assert.Equal(Enumerable.Range(0, refs.Count), images2.Order());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Lr_layer_decay_groups_the_tiny_models_trainable_vit_by_layer(bool freezeVit)
    {
        // The tiny ViT has one block (L = 1): embeddings get 0.5^2, the block 0.5^1; post_layernorm (ln_vision) keeps 1.
        var c = Ce("  max_iters: 1\n  batch_size_train: 8\n  lr_layer_decay: 0.5\n  beta2: 0.98");
        c = c with { Model = c.Model with { FreezeVit = freezeVit } };
        using var t = TinyShapes.Trainer(c, new TrainerOptions(shapes.RunDir($"layer-decay-{freezeVit}")));
        var groups = t.Learner.Optimization.Groups;
        var vit = groups.Where(g => g.Name.StartsWith("vit_layer_", StringComparison.Ordinal)).ToList();
        if (freezeVit)
        {
            Assert.Empty(vit);
            Assert.All(groups, g => Assert.Equal(1.0, g.LrScale));
            return;
        }
        Assert.Equal([("vit_layer_0_decay", 0.25), ("vit_layer_0_no_decay", 0.25), ("vit_layer_1_decay", 0.5), ("vit_layer_1_no_decay", 0.5)],
            vit.Select(g => (g.Name, g.LrScale)).OrderBy(x => x.Name, StringComparer.Ordinal).ToList());
        var vitNames = vit.SelectMany(g => g.Parameters.Select(p => p.Name)).ToHashSet();
        var trunk = t.Learner.Policy.Model.named_parameters().Select(p => p.name)
            .Where(n => n.StartsWith("vision_model.", StringComparison.Ordinal) && !n.StartsWith("vision_model.post_layernorm.", StringComparison.Ordinal));
        Assert.Equal(trunk.Order(), vitNames.Order());
        Assert.Contains(groups, g => g.LrScale == 1.0 && g.Parameters.Any(p => p.Name == "vision_model.post_layernorm.weight"));
    }

    [Fact]
    public void Runner_base_logs_lavis_rates_and_resumes_exactly_with_carried_micro_batches()
    {
        // 240 annotations / batch 16 = 15 iterations per epoch, accum 4: 3 updates an epoch, 3 micro-batches carried over.
        var config = Ce("  runner: runner_base\n  max_epoch: 2\n  batch_size_train: 16\n  accum_grad_iters: 4\n  eval_every: 3\n  checkpoint_every: 2");
        var sink = new TinyShapes.NullSink();
        using (var t = new CaptionTrainer(config, new TrainerOptions(shapes.RunDir("runner-base")), sink, NullLogger.Instance))
        {
            Assert.Equal(15, t.Learner.Plan.IterationsPerEpoch);
            Assert.Equal(6, t.Learner.TotalUpdates);
            var s = t.Run();
            // Updates of 4, 4, 4, then 4 + 3 carried, 4, 4 micro-batches of 16.
            Assert.Equal((4 * 6 + 3) * 16, s.SamplesConsumed);
            var sched = t.Learner.Plan.Scheduler(config.Run, null);
            var lrs = sink.Rows.Where(r => r.Phase == "ce").Select(r => r.Values["lr"]).ToList();
            // Epoch 0: warm-up at iterations 3, 7, 11 (steps of 4 micro-batches); epoch 1: the cosine at epoch 1.
            double[] expected = [sched.LearningRate(0, 3), sched.LearningRate(0, 7), sched.LearningRate(0, 11), sched.LearningRate(1, 3), sched.LearningRate(1, 7), sched.LearningRate(1, 11)];
            Assert.Equal(expected, lrs);
            Assert.Equal(1e-5 + (3e-3 - 1e-5) * 1.0, lrs[0], 12); // warmup_steps 2: already at init_lr by iteration 3
            Assert.Equal((3e-3 - 1e-4) * 0.5 * (1 + Math.Cos(Math.PI / 2)) + 1e-4, lrs[3], 12);
            Assert.Equal("runner_base", s.Settings["runner"]);
            Assert.Equal("caption", s.Settings["sample_unit"]);
        }

        var (straight, s1) = TinyShapes.Train(config, new TrainerOptions(shapes.RunDir("runner-base-straight")));
        var split = shapes.RunDir("runner-base-split");
        TinyShapes.Train(config, new TrainerOptions(split, StopAfterUpdates: 4)); // stops just after the update with the carried micro-batches
        var (resumed, s2) = TinyShapes.Train(config, new TrainerOptions(split, Resume: true));
        Assert.Equal(s1.SamplesConsumed, s2.SamplesConsumed);
        Assert.True(TinyShapes.MaxAbsDiff(straight, resumed) <= 1e-6);
    }

    [Fact]
    public void Best_metric_agg_metrics_ranks_checkpoints_by_cider_plus_bleu4_and_is_recorded()
    {
        var dir = shapes.RunDir("agg");
        var config = Ce("  max_iters: 4\n  batch_size_train: 8\n  eval_every: 2\n  checkpoint_every: 2\n  best_metric: agg_metrics");
        var sink = new TinyShapes.NullSink();
        TrainSummary s;
        using (var t = new CaptionTrainer(config, new TrainerOptions(dir), sink, NullLogger.Instance)) s = t.Run();
        var vals = sink.Rows.Where(r => r.Phase == "val").Take(2).ToList();
        Assert.All(vals, v => Assert.Equal(v.Values["CIDEr"] + v.Values["Bleu_4"], v.Values["agg_metrics"], 12));
        var best = vals.MaxBy(v => v.Values["agg_metrics"]);
        var firstBest = vals.First(v => v.Values["agg_metrics"] == best.Values["agg_metrics"]);
        Assert.Equal(firstBest.Step, s.BestStep);
        Assert.Equal("agg_metrics", s.Settings["best_metric"]);
        var state = new CheckpointStore(Path.Combine(dir, "checkpoints")).Load("best", _ => false).State;
        Assert.Equal("agg_metrics", state["best_metric"]!.GetValue<string>());
        Assert.Equal(best.Values["agg_metrics"], state["best_val_metric"]!.GetValue<double>(), 12);
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")))!;
        Assert.Equal("agg_metrics", summary["settings"]!["best_metric"]!.GetValue<string>());

        // Resuming under another metric (or sample unit) would compare values of different kinds: refused, naming the key.
        var longer = Ce("  max_iters: 6\n  batch_size_train: 8\n  eval_every: 2\n  checkpoint_every: 2");
        var e = Assert.Throws<InvalidDataException>(() => TinyShapes.Train(longer, new TrainerOptions(dir, Resume: true)));
        Assert.Contains("run.best_metric", e.Message);
        var imageUnit = Ce("  max_iters: 6\n  batch_size_train: 8\n  eval_every: 2\n  checkpoint_every: 2\n  best_metric: agg_metrics\n  ce_sample_unit: image");
        e = Assert.Throws<InvalidDataException>(() => TinyShapes.Train(imageUnit, new TrainerOptions(dir, Resume: true)));
        Assert.Contains("run.ce_sample_unit", e.Message);
    }
}
