using Scst.Host.Configuration;
using Scst.Model.Data.Transforms;

namespace Scst.Host.Tests;

/// <summary>datasets.NAME.vis_processor.{train,eval}: LAVIS's image-processor keys, accepted values and refusals.</summary>
public class ConfigLoaderVisProcessorTests
{
    private static string Config(string visProcessor, bool scst = false) =>
        "run:\n  max_iters: 1\ndatasets:\n  coco_caption:\n    build_info: {annotations: a.json}\n    vis_processor:\n" +
        string.Join("", visProcessor.Split('\n').Select(l => $"      {l}\n")) + (scst ? "scst:\n  beam_size: 3\n" : "");

    private static ConfigError Refused(string yaml, string key)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "v.yaml"));
        return Assert.Single(e.Errors, x => x.Key == key);
    }

    [Fact]
    public void Defaults_are_lavis_processors_with_blip_statistics()
    {
        var d = ConfigLoader.Parse("run:\n  max_iters: 1\ndatasets:\n  coco_caption:\n    build_info: {annotations: a.json}\n", "v.yaml").Datasets["coco_caption"];
        Assert.Equal((VisProcessorOptions.BlipImageTrain, 224), (d.TrainVisProcessor!.Name, d.TrainVisProcessor.ImageSize));
        Assert.Equal(new[] { 0.48145466, 0.4578275, 0.40821073 }, d.TrainVisProcessor.Mean);
        Assert.Equal(new[] { 0.26862954, 0.26130258, 0.27577711 }, d.TrainVisProcessor.Std);
        Assert.Equal(VisProcessorOptions.BlipStd, d.EvalVisProcessor!.Std);
        Assert.Equal((0.5, 1.0), (d.TrainVisProcessor.MinScale, d.TrainVisProcessor.MaxScale));
        Assert.Equal(VisProcessorOptions.BlipImageEval, d.EvalVisProcessor.Name);
        Assert.Equal(224, d.ImageSize);
    }

    [Fact]
    public void All_keys_are_read()
    {
        var d = ConfigLoader.Parse(Config(
            "train: {name: blip2_image_train, image_size: 48, min_scale: 0.2, max_scale: 0.9, mean: [0.5, 0.5, 0.5], std: [0.25, 0.5, 1]}\n" +
            "eval: {name: blip_image_eval, mean: [0.1, 0.2, 0.3], std: [1, 2, 3]}"), "v.yaml").Datasets["coco_caption"];
        var t = d.TrainVisProcessor!;
        Assert.Equal((VisProcessorOptions.Blip2ImageTrain, 48, 0.2, 0.9), (t.Name, t.ImageSize, t.MinScale, t.MaxScale));
        Assert.Equal(new[] { 0.5, 0.5, 0.5 }, t.Mean);
        Assert.Equal(new[] { 0.25, 0.5, 1 }, t.Std);
        Assert.Equal(48, d.EvalVisProcessor!.ImageSize); // eval takes train's size when it names none
        Assert.Equal(new[] { 0.1, 0.2, 0.3 }, d.EvalVisProcessor.Mean);
        Assert.Equal(new[] { 1.0, 2, 3 }, d.EvalVisProcessor.Std);
        Assert.Equal(48, d.ImageSize);
    }

    [Theory]
    [InlineData("train: {min_scale: 0}", "train.min_scale", "> 0")]
    [InlineData("train: {max_scale: 1.5}", "train.max_scale", "<= 1")]
    [InlineData("train: {min_scale: 0.8, max_scale: 0.6}", "train.min_scale", "must not exceed")]
    [InlineData("train: {name: blip_image_eval, min_scale: 0.5}", "train.min_scale", "no effect with blip_image_eval")]
    [InlineData("eval: {max_scale: 0.9}", "eval.max_scale", "belongs to the train processor")]
    [InlineData("eval: {name: blip_image_train}", "eval.name", "blip_image_eval")]
    [InlineData("train: {name: blip_image_random}", "train.name", "blip_image_train")]
    [InlineData("train: {image_size: 224}\neval: {image_size: 364}", "eval.image_size", "one input size")]
    [InlineData("train: {mean: [0.5, 0.5]}", "train.mean", "3 numbers")]
    [InlineData("train: {std: [0.5, 0, 0.5]}", "train.std", "> 0")]
    [InlineData("eval: {std: [0.5, a, 0.5]}", "eval.std", "list of numbers")]
    [InlineData("eval: {mean: 0.5}", "eval.mean", "list of numbers")]
    [InlineData("train: {scale: 0.5}", "train.scale", "unknown key")]
    public void Bad_values_are_refused_with_the_key(string vis, string key, string expected)
    {
        var err = Refused(Config(vis), $"datasets.coco_caption.vis_processor.{key}");
        Assert.Contains(expected, err.Message);
        Assert.True(err.Line >= 1);
    }

    [Fact]
    public void Scst_uses_the_eval_transform_and_refuses_train_augmentation()
    {
        // Defaulted: an SCST run's train processor is the eval one (the K captions of an image see the same pixels).
        var d = ConfigLoader.Parse(Config("eval: {image_size: 32}", scst: true), "v.yaml").Datasets["coco_caption"];
        Assert.Same(d.EvalVisProcessor, d.TrainVisProcessor);
        Assert.Equal(VisProcessorOptions.BlipImageEval, d.TrainVisProcessor!.Name);

        Assert.Contains("SCST", Refused(Config("train: {name: blip_image_train}", scst: true), "datasets.coco_caption.vis_processor.train.name").Message);
        Assert.Contains("SCST", Refused(Config("train: {min_scale: 0.6}", scst: true), "datasets.coco_caption.vis_processor.train.min_scale").Message);
        Assert.Contains("SCST", Refused(Config("train: {name: blip_image_eval, mean: [0, 0, 0]}", scst: true), "datasets.coco_caption.vis_processor.train.mean").Message);
        // Train statistics equal to eval's are consistent, so accepted.
        ConfigLoader.Parse(Config("train: {name: blip_image_eval, mean: [0.1, 0.2, 0.3]}\neval: {mean: [0.1, 0.2, 0.3]}", scst: true), "v.yaml");
    }

    [Theory]
    [InlineData("demo_ce.yaml")]
    [InlineData("demo_scst.yaml")]
    public void Demo_trains_on_unaugmented_shapes(string file)
    {
        // Flips and crops would contradict the shapes captions' left/right/top/bottom.
        var d = ConfigLoader.Load(Path.Combine(AppContext.BaseDirectory, "configs", file)).Datasets["shapes"];
        Assert.Equal(VisProcessorOptions.BlipImageEval, d.TrainVisProcessor!.Name);
        Assert.Equal(VisProcessorOptions.BlipImageEval, d.EvalVisProcessor!.Name);
    }

    [Fact]
    public void Ce_example_trains_with_lavis_blip_image_train()
    {
        var d = ConfigLoader.Load(Path.Combine(AppContext.BaseDirectory, "configs", "caption_ce_example.yaml")).Datasets["coco_caption"];
        Assert.Equal((VisProcessorOptions.BlipImageTrain, 364, 0.5, 1.0), (d.TrainVisProcessor!.Name, d.TrainVisProcessor.ImageSize, d.TrainVisProcessor.MinScale, d.TrainVisProcessor.MaxScale));
    }
}
