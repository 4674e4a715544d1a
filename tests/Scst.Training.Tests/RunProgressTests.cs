using System.Text.Json.Nodes;
using Scst.Host.Configuration;
using Scst.Training;

namespace Scst.Training.Tests;

/// <summary>A checkpoint's trainer state: what a resumed run continues from, and what it refuses.</summary>
public class RunProgressTests
{
    private static readonly Scst.Training.Configuration.RunOptions Run = ConfigLoader.Parse(
        "run:\n  runner: runner_iter\n  max_iters: 100\n  iters_per_inner_epoch: 10\n  best_metric: agg_metrics\n" +
        "datasets:\n  shapes:\n    build_info:\n      images: /tmp/none\n", "p.yaml").Run;

    private static readonly RunProgress Sample = new("scst", "image", Update: 42, Samples: 1344, Epoch: 3, Position: 17,
        BestValue: 1.25, BestStep: 40, SinceBest: 1, ElapsedS: 12.5);

    [Fact]
    public void Round_trips_through_the_checkpoint_state_json()
    {
        var json = JsonNode.Parse(Sample.ToJson(Run).ToJsonString())!.AsObject();
        Assert.Equal(Sample, RunProgress.FromJson(json, "c.safetensors", Run, "scst", "image"));
        Assert.Equal("agg_metrics", json["best_metric"]!.GetValue<string>());
        Assert.Equal("runner_iter", json["runner"]!.GetValue<string>());
    }

    [Fact]
    public void A_run_without_a_validation_yet_records_no_best_value()
    {
        var start = RunProgress.Start("ce", "caption");
        var json = start.ToJson(Run);
        Assert.Null(json["best_val_metric"]);
        Assert.Equal(start, RunProgress.FromJson(json, "c", Run, "ce", "caption"));
    }

    [Fact]
    public void After_takes_the_update_samples_and_cursor_and_keeps_the_best()
    {
        var cursor = new DataCursor(10, seed: 1);
        cursor.Next(4);
        var p = Sample.After(43, 1348, cursor);
        Assert.Equal((43L, 1348L, 0, 4), (p.Update, p.Samples, p.Epoch, p.Position));
        Assert.Equal((Sample.BestValue, Sample.BestStep, Sample.SinceBest), (p.BestValue, p.BestStep, p.SinceBest));
    }

    [Theory]
    [InlineData("mode", "ce", "holds a ce run")]
    [InlineData("sample_unit", "caption", "counts captions")]
    [InlineData("runner", "runner_base", "run.runner runner_base")]
    [InlineData("best_metric", "CIDEr", "picked its best checkpoint by CIDEr")]
    public void Refuses_a_state_this_config_cannot_continue(string key, string value, string message)
    {
        var json = Sample.ToJson(Run);
        json[key] = value;
        var e = Assert.Throws<InvalidDataException>(() => RunProgress.FromJson(json, "c.safetensors", Run, "scst", "image"));
        Assert.StartsWith("c.safetensors: ", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Reads_the_best_cider_of_checkpoints_written_before_best_metric_existed()
    {
        var json = Sample.ToJson(Run with { BestMetric = "CIDEr" });
        json.Remove("best_metric");
        json.Remove("best_val_metric");
        json["best_val_cider"] = 0.75;
        var p = RunProgress.FromJson(json, "old", Run with { BestMetric = "CIDEr" }, "scst", "image");
        Assert.Equal(0.75, p.BestValue);
    }
}
