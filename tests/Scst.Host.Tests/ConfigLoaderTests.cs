using Scst.Training.Configuration;
using Scst.Host.Configuration;

namespace Scst.Host.Tests;

public class ConfigLoaderTests
{
    private static string ConfigPath(string name) => Path.Combine(AppContext.BaseDirectory, "configs", name);

    [Theory]
    [InlineData("caption_ce_example.yaml", false)]
    [InlineData("caption_scst_example.yaml", true)]
    public void ExampleConfigsLoadWithTheSeedsValues(string file, bool scst)
    {
        var c = ConfigLoader.Load(ConfigPath(file));
        Assert.Equal(scst, c.IsScst);
        Assert.Equal("blip2_t5", c.Model.Arch);
        Assert.Equal("karpathy", c.Datasets["coco_caption"].Format);
        Assert.Equal(364, c.Datasets["coco_caption"].ImageSize);
        Assert.Equal(5, c.Run.NumBeams);
        if (scst)
        {
            Assert.Equal(1e-6, c.Run.InitLr);
            Assert.Equal(4, c.Run.BatchSizeTrain);
            Assert.Equal(5, c.Scst.BeamSize);
            Assert.Equal(Scst.Reward.BaselineKind.MeanOfK, c.Scst.Baseline);
            Assert.Equal(20000, c.Run.MaxIters);
            Assert.Equal(1000, c.Run.WarmupSteps);
        }
        else
        {
            Assert.Equal(1e-5, c.Run.InitLr);
            Assert.Equal("a photo of ", c.Model.Prompt);
        }
    }

    [Fact]
    public void ErrorsNameLineColumnAndKeyWithSuggestion()
    {
        const string yaml = """
            model:
              arch: blip2_t5
              freez_vit: true
            datasets:
              shapes:
                build_info:
                  images: data/shapes
            run:
              init_lr: -1
              max_iters: 10
            scst:
              beam_size: 0
            """;
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "bad.yaml"));
        var unknown = Assert.Single(e.Errors, x => x.Key == "model.freez_vit");
        Assert.Equal(3, unknown.Line);
        Assert.Contains("did you mean 'freeze_vit'", unknown.Message);
        var lr = Assert.Single(e.Errors, x => x.Key == "run.init_lr");
        Assert.Equal(9, lr.Line);
        Assert.Contains("> 0", lr.Message);
        var beams = Assert.Single(e.Errors, x => x.Key == "scst.beam_size");
        Assert.Equal(12, beams.Line);
        Assert.Contains(">= 1", beams.Message);
        Assert.All(e.Errors, x => Assert.Equal("bad.yaml", x.File));
        Assert.Contains("bad.yaml:3:3", e.Message);
    }

    [Theory]
    [InlineData("run:\n  max_iters: ten\ndatasets:\n  shapes:\n    build_info: {images: x}\n", "run.max_iters", "integer")]
    [InlineData("run:\n  max_iters: 1\n  device: gpu\ndatasets:\n  shapes:\n    build_info: {images: x}\n", "run.device", "cpu | cuda")]
    [InlineData("run:\n  max_iters: 1\ndatasets:\n  mystery:\n    build_info: {annotations: a.json}\n", "datasets.mystery.format", "cannot infer")]
    [InlineData("run:\n  max_iters: 1\ndatasets:\n  coco_caption: {}\n", "datasets.coco_caption.build_info.annotations", "annotations")]
    [InlineData("run: {}\ndatasets:\n  shapes:\n    build_info: {images: x}\n", "run.max_epoch", "max_epoch or max_iters")]
    [InlineData("run:\n  max_iters: 1\ndatasets:\n  shapes:\n    build_info: {images: x}\nscst:\n  mode: eventual\n", "scst.mode", "sync | async")]
    [InlineData("run:\n  max_iters: 1\ndatasets:\n  shapes:\n    build_info: {images: x}\nscst:\n  rollout_splits: 2\n", "scst.rollout_splits", "sync mode spreads each update over every rollout worker present; remove the key")]
    [InlineData("run:\n  max_iters: 1\n  min_len: 9\n  max_len: 3\ndatasets:\n  shapes:\n    build_info: {images: x}\n", "run.min_len", "must not exceed")]
    [InlineData("model:\n  load_pretrained: true\nrun:\n  max_iters: 1\ndatasets:\n  shapes:\n    build_info: {images: x}\n", "model.pretrained", "Hugging Face")]
    [InlineData("run:\n  max_iters: 1\ndatasets: {}\n", "datasets", "at least one dataset")]
    public void BadValuesAreRejectedWithTheKey(string yaml, string key, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "x.yaml"));
        var err = Assert.Single(e.Errors, x => x.Key == key);
        Assert.Contains(expected, err.Message);
        Assert.True(err.Line >= 1);
    }

    private const string Shapes = "datasets:\n  shapes:\n    build_info: {images: x}\n";

    [Fact]
    public void EvaluationDecodingKeysDefaultToTransformersDefaultsAndLavisTopP()
    {
        var run = ConfigLoader.Parse("run:\n  max_iters: 1\n" + Shapes, "x.yaml").Run;
        Assert.Equal((1.0, 1.0, false, 0.9, 1.0), (run.RepetitionPenalty, run.LengthPenalty, run.UseNucleusSampling, run.TopP, run.Temperature));
        Assert.Equal(1, run.MinLen);
    }

    [Theory]
    [InlineData("  repetition_penalty: 1.15\n  length_penalty: 0\n  min_len: 8\n", 1.15, 0.0, false, 0.9, 1.0, 8)]
    [InlineData("  repetition_penalty: 0.8\n  length_penalty: -1.5\n", 0.8, -1.5, false, 0.9, 1.0, 1)]
    [InlineData("  use_nucleus_sampling: true\n  num_beams: 1\n  top_p: 1\n  temperature: 0.7\n", 1.0, 1.0, true, 1.0, 0.7, 1)]
    [InlineData("  top_p: 0.5\n  temperature: 3\n", 1.0, 1.0, false, 0.5, 3.0, 1)]
    public void EvaluationDecodingKeysAreRead(string keys, double rep, double len, bool nucleus, double topP, double temperature, int minLen)
    {
        var run = ConfigLoader.Parse("run:\n  max_iters: 1\n" + keys + Shapes, "x.yaml").Run;
        Assert.Equal((rep, len, nucleus, topP, temperature, minLen),
            (run.RepetitionPenalty, run.LengthPenalty, run.UseNucleusSampling, run.TopP, run.Temperature, run.MinLen));
    }

    [Theory]
    [InlineData("  repetition_penalty: 0\n", "run.repetition_penalty", "> 0")]
    [InlineData("  repetition_penalty: -1.2\n", "run.repetition_penalty", "> 0")]
    [InlineData("  length_penalty: long\n", "run.length_penalty", "number")]
    [InlineData("  top_p: 0\n", "run.top_p", "> 0 and <= 1")]
    [InlineData("  top_p: 1.1\n", "run.top_p", "> 0 and <= 1")]
    [InlineData("  temperature: 0\n", "run.temperature", "> 0")]
    [InlineData("  use_nucleus_sampling: yes please\n", "run.use_nucleus_sampling", "true or false")]
    [InlineData("  use_nucleus_sampling: true\n", "run.use_nucleus_sampling", "num_beams: 1")]
    [InlineData("  use_nucleus_sampling: true\n  num_beams: 3\n", "run.use_nucleus_sampling", "beam-sample")]
    public void EvaluationDecodingKeysOutOfRangeAreRefused(string keys, string key, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("run:\n  max_iters: 1\n" + keys + Shapes, "x.yaml"));
        var err = Assert.Single(e.Errors, x => x.Key == key);
        Assert.Contains(expected, err.Message);
    }

    [Fact]
    public void BrokenYamlReportsTheLine()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("run:\n  max_iters: 1\n  seed: [1, 2\n", "broken.yaml"));
        Assert.Contains("not valid YAML", e.Message);
        Assert.True(e.Errors[0].Line >= 3);
    }

    [Fact]
    public void DuplicateKeysAreRejected()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("run:\n  max_iters: 1\n  max_iters: 2\n", "dup.yaml"));
        Assert.Contains("dup.yaml:3", e.Message);
    }

    [Fact]
    public void MissingFileIsNamed()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load("/nonexistent/cfg.yaml"));
        Assert.Contains("/nonexistent/cfg.yaml", e.Message);
    }

    [Fact]
    public void ShowPrintsTheResolvedValuesWithDefaults()
    {
        var c = ConfigLoader.Load(ConfigPath("caption_scst_example.yaml"));
        var yaml = ConfigPrinter.ToYaml(c);
        Assert.Contains("beam_size: 5", yaml);
        Assert.Contains("init_lr: 1E-06", yaml, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("run:\n  runner: runner_base\n  max_epoch: 2\n  max_iters: 5\n", "run.max_iters", "runner_base trains max_epoch epochs")]
    [InlineData("run:\n  runner: runner_base\n  max_epoch: 2\n  iters_per_inner_epoch: 5\n", "run.iters_per_inner_epoch", "no inner epochs")]
    [InlineData("run:\n  runner: runner_base\n", "run.max_epoch", "runner_base needs max_epoch")]
    [InlineData("run:\n  runner: runner_iter\n  max_iters: 10\n", "run.iters_per_inner_epoch", "runner_iter needs iters_per_inner_epoch")]
    [InlineData("run:\n  runner: runner_iter\n  iters_per_inner_epoch: 5\n", "run.max_iters", "runner_iter needs max_iters")]
    [InlineData("run:\n  runner: runner_iter\n  max_iters: 10\n  iters_per_inner_epoch: 5\n  max_epoch: 3\n", "run.max_epoch", "remove max_epoch")]
    [InlineData("run:\n  runner: runner_epoch\n  max_epoch: 1\n", "run.runner", "runner_base | runner_iter")]
    [InlineData("run:\n  max_iters: 1\n  ce_sample_unit: word\n", "run.ce_sample_unit", "caption | image")]
    [InlineData("run:\n  max_iters: 1\n  best_metric: cider\n", "run.best_metric", "CIDEr | agg_metrics")]
    [InlineData("run:\n  max_iters: 1\n  beta2: 1\n", "run.beta2", "below 1")]
    [InlineData("run:\n  max_iters: 1\n  lr_layer_decay: 0\n", "run.lr_layer_decay", "> 0")]
    [InlineData("run:\n  max_iters: 1\n  log_freq: -1\n", "run.log_freq", ">= 0")]
    [InlineData("run:\n  max_iters: 1\n  log_freq: often\n", "run.log_freq", "expected an integer")]
    [InlineData("run:\n  max_iters: 1\n  max_nonfinite: 0\n", "run.max_nonfinite", ">= 1")]
    public void RunnerAndOptimizerKeysAreCheckedWithTheKey(string run, string key, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(run + Shapes, "x.yaml"));
        var err = Assert.Single(e.Errors, x => x.Key == key);
        Assert.Contains(expected, err.Message);
    }

    [Fact]
    public void RunnerAndOptimizerKeysReachTheRunOptions()
    {
        var r = ConfigLoader.Parse("run:\n  runner: runner_iter\n  max_iters: 2e4\n  iters_per_inner_epoch: 2000\n  ce_sample_unit: image\n" +
                                   "  best_metric: agg_metrics\n  beta2: 0.98\n  lr_layer_decay: 0.95\n" + Shapes, "x.yaml").Run;
        Assert.Equal(("runner_iter", 20000, 2000), (r.Runner, r.MaxIters, r.ItersPerInnerEpoch));
        Assert.Equal((CeSampleUnit.Image, "agg_metrics", 0.98, 0.95), (r.CeSampleUnit, r.BestMetric, r.Beta2, r.LrLayerDecay));
        var d = ConfigLoader.Parse("run:\n  max_epoch: 1\n" + Shapes, "x.yaml").Run;
        Assert.Equal(((string?)null, CeSampleUnit.Caption, "CIDEr", 0.999, 1.0), (d.Runner, d.CeSampleUnit, d.BestMetric, d.Beta2, d.LrLayerDecay));
    }

    [Theory]
    [InlineData("", 50)]                  // LAVIS's default
    [InlineData("  log_freq: 10\n", 10)]
    [InlineData("  log_freq: 0\n", 0)]    // never
    public void LogFreqReachesTheRunOptions(string line, int expected) =>
        Assert.Equal(expected, ConfigLoader.Parse("run:\n  max_iters: 1\n" + line + Shapes, "x.yaml").Run.LogFreq);

    [Theory]
    [InlineData("", 5)]
    [InlineData("  max_nonfinite: 1\n", 1)]
    public void MaxNonfiniteReachesTheRunOptions(string line, int expected) =>
        Assert.Equal(expected, ConfigLoader.Parse("run:\n  max_iters: 1\n" + line + Shapes, "x.yaml").Run.MaxNonfinite);
}
