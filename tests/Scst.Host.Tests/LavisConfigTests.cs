using Scst.Training.Configuration;
using Scst.Training;
using Scst.Host.Configuration;
using Scst.Model.Blip2;
using Scst.Model.Checkpoints;

namespace Scst.Host.Tests;

/// <summary>
/// LAVIS's BLIP-2 T5 files (tests/data/lavis: its model-type YAMLs and caption_coco_ft.yaml with arch blip2_t5,
/// model_type caption_coco_flant5xl and local paths) as a migrating user brings them: they validate and resolve to
/// LAVIS's values, each with its source; what cannot work is refused naming the key.
/// </summary>
public class LavisConfigTests
{
    private static string Lavis(string name) => Path.Combine(AppContext.BaseDirectory, "data", "lavis", name);

    private static ResolvedKey Key(LoadedConfig c, string path) =>
        c.Trace.Find(path) ?? throw new Xunit.Sdk.XunitException($"{path} was not resolved");

    private static string Text(string path) => File.ReadAllText(path);

    private static ConfigException Refused(string yaml) => Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "x.yaml"));

    [Fact]
    public void CaptionCocoFtResolvesToLavisValuesWithTheirSources()
    {
        var file = Lavis("caption_coco_ft.yaml");
        var c = ConfigLoader.LoadTraced(file);
        var m = c.Config!.Model;
        Assert.Equal(("blip2_t5", "caption_coco_flant5xl"), (m.Arch, m.ModelType));
        // From the caption_coco_flant5xl preset (LAVIS's blip2_caption_flant5xl.yaml): the file does not set these.
        const string preset = "preset caption_coco_flant5xl";
        Assert.Equal(("true", preset), (Key(c, "model.load_pretrained").Value, Key(c, "model.load_pretrained").Source));
        Assert.True(m.LoadPretrained);
        Assert.Equal((364, "364", preset), (m.ImageSize, Key(c, "model.image_size").Value, Key(c, "model.image_size").Source));
        Assert.Equal((32, preset), (m.NumQueryToken, Key(c, "model.num_query_token").Source));
        Assert.Equal(("google/flan-t5-xl", preset), (m.T5Model, Key(c, "model.t5_model").Source));
        Assert.Equal(("fp32", preset), (m.VitPrecision, Key(c, "model.vit_precision").Source));
        Assert.Equal(("gelu", preset), (m.FeedForwardActivation, Key(c, "model.feed_forward_activation").Source));
        Assert.Equal((32, preset), (m.MaxTxtLen, Key(c, "model.max_txt_len").Source));
        Assert.Equal("eva_clip_g", m.VitModel);
        // From the file: LAVIS's caption_coco_ft.yaml trains the ViT (freeze_vit: False) from the pretrained weights.
        Assert.False(m.FreezeVit);
        Assert.Equal($"{file}:9:15", Key(c, "model.freeze_vit").Source);
        Assert.False(m.LoadFinetuned);
        Assert.Equal($"{file}:7:19", Key(c, "model.load_finetuned").Source);
        // The text processor's prompt is the T5 encoder's prompt (the file sets no model.prompt).
        Assert.Equal("a photo of ", m.Prompt);
        Assert.StartsWith($"{file}:28:19", Key(c, "model.prompt").Source);
        Assert.Equal("\"a photo of \"", Key(c, "model.prompt").Value);
        var d = c.Config.Datasets["coco_caption"];
        Assert.Equal((364, "lavis"), (d.ImageSize, d.Format));
        Assert.Equal(("sentencepiece", Path.Combine("checkpoints/blip2-flan-t5-xl", "spiece.model")), (m.Tokenizer.Type, m.Tokenizer.Path));
        Assert.Equal((1, true, 4), (c.Config.Run.WorldSize, c.Config.Run.Amp, c.Config.Run.NumWorkers));

        var shown = ConfigPrinter.WithSources(c.Trace);
        Assert.Contains("model.image_size: 364", shown);
        Assert.Matches(@"model\.load_pretrained: true +# preset caption_coco_flant5xl", shown);
        Assert.Matches(@"model\.num_query_token: 32 +# preset caption_coco_flant5xl", shown);
        Assert.Matches(@"model\.prompt: ""a photo of "" +# .*caption_coco_ft\.yaml:28:19", shown);
    }

    [Fact]
    public void APretrainModelTypeGivesAFrozenHalfPrecisionVitAt224()
    {
        var c = ConfigLoader.ParseTraced("""
            model: {model_type: pretrain_flant5xl, pretrained: /models/blip2-flan-t5-xl}
            datasets: {coco_caption: {build_info: {annotations: a.json}}}
            run: {max_iters: 1}
            """, "p.yaml");
        var m = c.Config!.Model;
        Assert.Equal((true, "fp16", true, 32, 224), (m.FreezeVit, m.VitPrecision, m.LoadPretrained, m.NumQueryToken, c.Config.Datasets["coco_caption"].ImageSize));
        Assert.Equal("preset pretrain_flant5xl", Key(c, "model.vit_precision").Source);
        Assert.Equal("model.image_size", Key(c, "datasets.coco_caption.vis_processor.train.image_size").Source);
        Assert.Equal("", m.Prompt);
    }

    [Theory]
    [InlineData("blip2_pretrain_flant5xl.yaml", 224, "fp16", true, "google/flan-t5-xl", "")]
    [InlineData("blip2_pretrain_flant5xxl.yaml", 224, "fp16", true, "google/flan-t5-xxl", "")]
    [InlineData("blip2_caption_flant5xl.yaml", 364, "fp32", false, "google/flan-t5-xl", "a photo of")]
    public void LavisModelTypeFilesValidateOnTheirOwn(string name, int size, string precision, bool frozen, string t5, string prompt)
    {
        var c = ConfigLoader.LoadTraced(Lavis(name));
        Assert.Null(c.Config);
        Assert.Equal("blip2_t5", Key(c, "model.arch").Value);
        Assert.Equal(size.ToString(), Key(c, "model.image_size").Value);
        Assert.Equal(size.ToString(), Key(c, "preprocess.vis_processor.eval.image_size").Value);
        Assert.Equal(precision, Key(c, "model.vit_precision").Value);
        Assert.Equal(frozen ? "true" : "false", Key(c, "model.freeze_vit").Value);
        Assert.Equal(t5, Key(c, "model.t5_model").Value);
        Assert.Equal("32", Key(c, "model.num_query_token").Value);
        Assert.Equal(prompt.Length == 0 ? "\"\"" : prompt, Key(c, "model.prompt").Value);
        // LAVIS's pretrain files write finetuned: "" (not set); the caption file names the finetuned weights.
        var finetuned = Key(c, "model.finetuned");
        if (name.Contains("pretrain")) Assert.Equal(("null", true), (finetuned.Value, finetuned.Source.EndsWith("(empty: not set)")));
        else Assert.Equal("checkpoints/blip2_caption_flant5xl.safetensors", finetuned.Value);
        // A model file is not a run.
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Lavis(name)));
        Assert.Contains("model_type", e.Message);
    }

    [Fact]
    public void TheVitLModelTypeIsRefusedNamingVitModel()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.LoadTraced(Lavis("blip2_pretrain_flant5xl_vitL.yaml")));
        var err = Assert.Single(e.Errors);
        Assert.Equal(("model.vit_model", 12L), (err.Key, err.Line));
        Assert.Contains("eva_clip_g", err.Message);
    }

    [Fact]
    public void APretrainedModelTypeWithoutPretrainedNamesModelPretrained()
    {
        var yaml = Text(Lavis("caption_coco_ft.yaml")).Replace("  pretrained: checkpoints/blip2-flan-t5-xl\n", "");
        var err = Assert.Single(Refused(yaml).Errors);
        Assert.Equal("model.pretrained", err.Key);
        Assert.Contains("caption_coco_flant5xl", err.Message);
        Assert.Contains("nothing is downloaded", err.Message);
    }

    [Fact]
    public void AWordTokenizerOnThePretrainedT5IsRefused()
    {
        var yaml = Text(Lavis("caption_coco_ft.yaml")).Replace("  pretrained: checkpoints/blip2-flan-t5-xl\n",
            "  pretrained: checkpoints/blip2-flan-t5-xl\n  tokenizer: {type: word}\n");
        var err = Assert.Single(Refused(yaml).Errors);
        Assert.Equal("model.tokenizer.type", err.Key);
    }

    [Theory]
    [InlineData("pretrained", "https://storage.googleapis.com/sfr-vision-language-research/LAVIS/models/BLIP2/blip2_pretrained_flant5xl.pth", "URL")]
    [InlineData("pretrained", "checkpoints/blip2_pretrained_flant5xl.pth", "pickled")]
    [InlineData("pretrained", "checkpoints/pytorch_model.bin", "pickled")]
    [InlineData("finetuned", "http://example.org/blip2_caption_flant5xl.pth", "URL")]
    [InlineData("finetuned", "out/checkpoint_best.pt", "pickled")]
    public void UrlsAndPickledCheckpointsAreRefusedNamingTheKey(string key, string value, string expected)
    {
        var line = key == "pretrained" ? $"  pretrained: {value}\n" : $"  pretrained: checkpoints/blip2-flan-t5-xl\n  load_finetuned: true\n  finetuned: {value}\n";
        var yaml = Text(Lavis("caption_coco_ft.yaml")).Replace("  load_finetuned: False\n", key == "pretrained" ? "  load_finetuned: False\n" : "").Replace("  pretrained: checkpoints/blip2-flan-t5-xl\n", line);
        var err = Assert.Single(Refused(yaml).Errors);
        Assert.Equal("model." + key, err.Key);
        Assert.Contains(expected, err.Message);
        Assert.Contains("safetensors", err.Message);
    }

    [Fact]
    public void UnknownModelTypesListTheKnownOnes()
    {
        var err = Assert.Single(Refused("model: {model_type: pretrain_flant5x}\ndatasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1}\n").Errors);
        Assert.Equal("model.model_type", err.Key);
        Assert.Contains("tiny | pretrain_flant5xl | pretrain_flant5xl_vitL | pretrain_flant5xxl | caption_coco_flant5xl", err.Message);
        Assert.Contains("did you mean 'pretrain_flant5xl'", err.Message);
    }

    [Fact]
    public void TheUsersValuesWinOverThePreset()
    {
        var c = ConfigLoader.ParseTraced("""
            model: {model_type: caption_coco_flant5xl, pretrained: /m, load_finetuned: false, freeze_vit: true, vit_precision: bf16, image_size: 224, feed_forward_activation: gelu_new, prompt: "describe:"}
            datasets: {coco_caption: {build_info: {annotations: a.json}}}
            run: {max_iters: 1}
            """, "u.yaml");
        var m = c.Config!.Model;
        Assert.Equal((true, "bf16", 224, "gelu_new", "describe:"), (m.FreezeVit, m.VitPrecision, m.ImageSize, m.FeedForwardActivation, m.Prompt));
        Assert.Equal(224, c.Config.Datasets["coco_caption"].ImageSize);
        Assert.StartsWith("u.yaml:", Key(c, "model.vit_precision").Source);
    }

    [Theory]
    [InlineData("model: {model_type: pretrain_flant5xl, pretrained: /m}\ndatasets: {coco_caption: {build_info: {annotations: a}, vis_processor: {eval: {image_size: 364}}}}\nrun: {max_iters: 1}\n", "model.image_size", "364")]
    [InlineData("model: {architecture: {num_query_tokens: 8}, num_query_token: 32}\ndatasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1}\n", "model.num_query_token", "architecture.num_query_tokens is 8")]
    [InlineData("model: {t5_model: google/flan-t5-xl}\ndatasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1}\n", "model.t5_model", "remove it")]
    [InlineData("model: {load_pretrained: true, pretrained: /m, t5_model: t5-3b}\ndatasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1}\n", "model.t5_model", "google/flan-t5-xl")]
    [InlineData("model: {load_pretrained: true, pretrained: /m, drop_path_rate: 0.1}\ndatasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1}\n", "model.drop_path_rate", "not implemented")]
    [InlineData("model: {prompt: 'a picture of'}\ndatasets: {shapes: {build_info: {images: x}, text_processor: {train: {prompt: 'a photo of '}}}}\nrun: {max_iters: 1}\n", "model.prompt", "encoder")]
    [InlineData("datasets: {shapes: {build_info: {images: x}, text_processor: {eval: {prompt: 'a photo of '}}}}\nrun: {max_iters: 1}\n", "datasets.shapes.text_processor.eval.prompt", "model.prompt")]
    [InlineData("model: {architecture: {image_size: 32}}\ndatasets: {shapes: {build_info: {images: x}, vis_processor: {eval: {image_size: 64}}}}\nrun: {max_iters: 1}\n", "model.architecture.image_size", "64")]
    [InlineData("datasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1, val_freq: 1}\n", "run.val_freq", "run.eval_every")]
    [InlineData("datasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1, save_freq: 5}\n", "run.save_freq", "run.checkpoint_every")]
    [InlineData("datasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1, save_last: false}\n", "run.save_last", "always written")]
    [InlineData("datasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1, use_dist_eval_sampler: true}\n", "run.use_dist_eval_sampler", "remove it")]
    [InlineData("datasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1, world_size: 8}\n", "run.world_size", "--role rollout")]
    [InlineData("datasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1, dist_url: 'tcp://10.0.0.1:23456'}\n", "run.dist_url", "--seed-nodes")]
    [InlineData("datasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1, evaluate: true}\n", "run.evaluate", "eval --config")]
    [InlineData("datasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1, resume_ckpt_path: out/checkpoint_3.pth}\n", "run.resume_ckpt_path", "train --resume")]
    [InlineData("datasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1, report_metric: false}\n", "run.report_metric", "always computed")]
    [InlineData("preprocess: {vis_processor: {}}\ndatasets: {shapes: {build_info: {images: x}}}\nrun: {max_iters: 1}\n", "preprocess", "vis_processor")]
    public void KeysThatCannotTakeEffectAreRefusedWithWhatToDo(string yaml, string key, string expected)
    {
        var err = Assert.Single(Refused(yaml).Errors);
        Assert.Equal(key, err.Key);
        Assert.Contains(expected, err.Message);
    }

    [Fact]
    public void PretrainedChecksCompareTheKeysWithTheFolder()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "data", "hf", "blip2_t5_tiny");
        var cfg = Blip2Config.FromJson(HfCheckpoint.ReadConfig(dir));
        var m = ConfigLoader.Parse($"model: {{load_pretrained: true, pretrained: {dir}}}\ndatasets: {{shapes: {{build_info: {{images: x}}}}}}\nrun: {{max_iters: 1}}\n", "t.yaml").Model;
        PretrainedChecks.Check(m, cfg, dir);                                        // nothing named: nothing to check
        PretrainedChecks.Check(m with { NumQueryToken = cfg.NumQueryTokens }, cfg, dir);
        var q = Assert.Throws<InvalidDataException>(() => PretrainedChecks.Check(m with { NumQueryToken = 32 }, cfg, dir));
        Assert.StartsWith("model.num_query_token is 32", q.Message);
        Assert.Contains($"num_query_tokens {cfg.NumQueryTokens}", q.Message);
        var t5 = Assert.Throws<InvalidDataException>(() => PretrainedChecks.Check(m with { T5Model = "google/flan-t5-xl" }, cfg, dir));
        Assert.StartsWith("model.t5_model is google/flan-t5-xl", t5.Message);
        var vit = Assert.Throws<InvalidDataException>(() => PretrainedChecks.Check(m with { VitModel = "eva_clip_g" }, cfg, dir));
        Assert.StartsWith("model.vit_model is eva_clip_g", vit.Message);
        // The shapes of the real hub configs match their names.
        var xl = cfg with { Text = cfg.Text with { DModel = 2048, NumLayers = 24, NumHeads = 32, DFf = 5120 } };
        PretrainedChecks.Check(m with { T5Model = "google/flan-t5-xl" }, xl, dir);
        Assert.Throws<InvalidDataException>(() => PretrainedChecks.Check(m with { T5Model = "google/flan-t5-xxl" }, xl, dir));
        Assert.Equal("gelu", m.FeedForwardActivation);                              // LAVIS's choice with load_pretrained
    }
}
