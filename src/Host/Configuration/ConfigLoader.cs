using System.Globalization;
using Scst.Actors.Configuration;
using Scst.Model.Data.Transforms;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Scst.Host.Configuration;

/// <summary>
/// Loads a YAML config (LAVIS's schema plus our scst section) into <see cref="ScstConfig"/>. Every problem found is
/// reported at once, each with file, line, column and key, before any work starts.
/// </summary>
public static class ConfigLoader
{
    public static readonly string[] Baselines = ["mean", "leave_one_out", "greedy"];
    public static readonly string[] Samplings = ["beam", "sample"];
    public static readonly string[] Modes = ["sync", "async"];
    public static readonly string[] LrScheds = ["linear_warmup_cosine_lr", "linear_warmup_step_lr", "constant_lr"];
    public static readonly string[] DatasetFormats = ["karpathy", "lavis", "flickr", "shapes"];

    public static ScstConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new ConfigException([new ConfigError(path, 0, 0, "", "config file not found")]);
        return Parse(File.ReadAllText(path), path);
    }

    public static ScstConfig Parse(string yaml, string file)
    {
        var errors = new List<ConfigError>();
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            var inner = e.InnerException?.Message;
            throw new ConfigException([new ConfigError(file, e.Start.Line, e.Start.Column, "",
                $"not valid YAML: {e.Message}{(inner is null ? "" : $" ({inner})")}")]);
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode rootNode)
            throw new ConfigException([new ConfigError(file, 1, 1, "",
                "expected a mapping with the sections model, datasets, run (and scst for SCST)")]);

        var root = new YamlSection(rootNode, rootNode.Start, file, "", errors);
        var model = ReadModel(root.Section("model"));
        var trainVis = new Dictionary<string, TrainVisSource>(StringComparer.Ordinal);
        var datasets = ReadDatasets(root.Section("datasets"), errors, file, trainVis);
        var run = ReadRun(root.Section("run"));
        var scst = ReadScst(root.Section("scst"));
        if (scst.Enabled) datasets = ScstTrainVisProcessors(datasets, trainVis, errors, file);
        root.Finish();

        if (errors.Count > 0) throw new ConfigException(errors);
        return new ScstConfig(model, datasets, run, scst, Path.GetFullPath(file));
    }

    private static ModelOptions ReadModel(YamlSection s)
    {
        var arch = s.GetString("arch", "blip2_t5", "blip2_t5", "t5");
        var modelType = s.GetString("model_type", "tiny");
        var loadPretrained = s.GetBool("load_pretrained", false);
        var pretrained = s.GetOptionalString("pretrained");
        if (loadPretrained && pretrained is null)
            s.Error("pretrained", s.Where, "load_pretrained is true, so 'pretrained' must name a Hugging Face folder or checkpoint");
        var loadFinetuned = s.GetBool("load_finetuned", false);
        var finetuned = s.GetOptionalString("finetuned");
        if (loadFinetuned && finetuned is null)
            s.Error("finetuned", s.Where, "load_finetuned is true, so 'finetuned' must name a checkpoint");
        var freezeVit = s.GetBool("freeze_vit", true);
        var prompt = s.GetString("prompt", "");
        var maxTxtLen = s.GetInt("max_txt_len", 32, 1, 4096);
        var act = s.GetString("feed_forward_activation", "gelu_new", "gelu_new", "gelu", "relu");
        // LAVIS keys we accept for compatibility but that have no effect in this implementation.
        s.GetBool("use_grad_checkpoint", false);
        var vitPrecision = s.GetString("vit_precision", "fp32", "fp16", "fp32", "bf16");
        if (vitPrecision != "fp32" && !(loadPretrained && freezeVit))
            s.Error("vit_precision", s.Where, $"vit_precision {vitPrecision} holds a frozen pretrained ViT in half precision (LAVIS); it needs load_pretrained: true and freeze_vit: true, otherwise use fp32");
        s.GetInt("num_query_token", 32, 1);
        s.GetOptionalString("t5_model");

        // A pretrained T5 reads ids of its own sentencepiece vocabulary: by default the folder's spiece.model.
        var t = s.Section("tokenizer");
        var tok = new TokenizerOptions(
            t.GetString("type", loadPretrained ? "sentencepiece" : "word", "word", "sentencepiece"),
            t.GetOptionalString("path") ?? (loadPretrained && pretrained is not null && !t.IsPresent ? Path.Combine(pretrained, "spiece.model") : null),
            t.GetInt("min_freq", 1, 1));
        if (tok.Type == "sentencepiece" && tok.Path is null)
            t.Error("path", t.Where, "a sentencepiece tokenizer needs 'path' (the spiece.model file)");
        if (tok.Type == "word" && loadPretrained)
            t.Error("type", t.Where, "model.tokenizer: a word vocabulary built from the captions gives a pretrained T5 meaningless ids; use type: sentencepiece with the checkpoint's spiece.model (the default with load_pretrained)");
        t.Finish();

        var a = s.Section("architecture");
        TinyArchitecture? archOpts = null;
        if (a.IsPresent || !loadPretrained)
        {
            archOpts = new TinyArchitecture(
                ImageSize: a.GetInt("image_size", 32, 8),
                PatchSize: a.GetInt("patch_size", 8, 1),
                VisionHidden: a.GetInt("vision_hidden", 64, 8),
                VisionLayers: a.GetInt("vision_layers", 2, 1),
                VisionHeads: a.GetInt("vision_heads", 4, 1),
                VisionMlp: a.GetInt("vision_mlp", 128, 1),
                NumQueryTokens: a.GetInt("num_query_tokens", 8, 1),
                QformerHidden: a.GetInt("qformer_hidden", 64, 8),
                QformerLayers: a.GetInt("qformer_layers", 1, 1),
                QformerHeads: a.GetInt("qformer_heads", 4, 1),
                QformerIntermediate: a.GetInt("qformer_intermediate", 128, 1),
                CrossAttentionFrequency: a.GetInt("cross_attention_frequency", 1, 1),
                DModel: a.GetInt("d_model", 64, 8),
                DKv: a.GetInt("d_kv", 16, 1),
                DFf: a.GetInt("d_ff", 128, 1),
                NumHeads: a.GetInt("num_heads", 4, 1),
                EncoderLayers: a.GetInt("encoder_layers", 1, 1),
                DecoderLayers: a.GetInt("decoder_layers", 2, 1),
                RelativeAttentionNumBuckets: a.GetInt("relative_attention_num_buckets", 16, 2),
                RelativeAttentionMaxDistance: a.GetInt("relative_attention_max_distance", 32, 2),
                DropoutRate: a.GetDouble("dropout_rate", 0.0, 0, 1));
            if (archOpts.ImageSize % archOpts.PatchSize != 0)
                a.Error("patch_size", a.Where, $"image_size {archOpts.ImageSize} must be a multiple of patch_size {archOpts.PatchSize}");
        }
        a.Finish();
        s.Finish();
        return new ModelOptions(arch, modelType, loadPretrained, pretrained, loadFinetuned, finetuned, freezeVit, prompt,
            maxTxtLen, act, tok, archOpts, vitPrecision);
    }

    private static IReadOnlyDictionary<string, DatasetOptions> ReadDatasets(YamlSection s, List<ConfigError> errors, string file,
        Dictionary<string, TrainVisSource> trainVis)
    {
        var result = new Dictionary<string, DatasetOptions>(StringComparer.Ordinal);
        foreach (var (name, d) in s.NamedSections())
        {
            var inferred = name switch
            {
                "shapes" => "shapes",
                "coco_caption" or "coco_karpathy" => "karpathy",
                "flickr8k" or "flickr30k" => "flickr",
                _ => null,
            };
            var format = d.GetOptionalString("format", DatasetFormats) ?? inferred;
            if (format is null)
                d.Error("format", d.Where, $"cannot infer the dataset format from the name '{name}': set format to one of {string.Join(" | ", DatasetFormats)}");

            var b = d.Section("build_info");
            var annotations = b.GetOptionalString("annotations");
            var images = b.GetOptionalString("images");
            if (format is not null and not "shapes" && annotations is null)
                b.Error("annotations", b.Where, $"a {format} dataset needs build_info.annotations (the annotation file)");
            if (format == "shapes" && images is null)
                b.Error("images", b.Where, "the shapes dataset needs build_info.images (the folder it is generated into)");
            b.Finish();

            var (trainVisOptions, evalVis, trainSource) = ReadVisProcessors(d.Section("vis_processor"));
            trainVis[name] = trainSource;
            var imageSize = evalVis.ImageSize;

            string? trainPrompt = null;
            var maxWords = 50;
            var tp = d.Section("text_processor");
            foreach (var phase in new[] { "train", "eval" })
            {
                var p = tp.Section(phase);
                p.GetString("name", "blip_caption", "blip_caption");
                var prompt = p.GetOptionalString("prompt");
                if (phase == "train") trainPrompt = prompt;
                maxWords = p.GetInt("max_words", maxWords, 1);
                p.Finish();
            }
            tp.Finish();

            var missing = d.GetString("missing_images", "error", "error", "skip");
            d.GetString("data_type", "images", "images");

            ShapesOptions? shapes = null;
            var sh = d.Section("shapes");
            if (format == "shapes")
                shapes = new ShapesOptions(sh.GetInt("seed", 1234), sh.GetInt("train", 6000, 1), sh.GetInt("val", 500, 1), sh.GetInt("test", 1000, 1));
            sh.Finish();
            d.Finish();
            result[name] = new DatasetOptions(name, format ?? "", annotations, images, imageSize, trainPrompt, maxWords, missing, shapes,
                trainVisOptions, evalVis);
        }
        if (result.Count == 0)
            errors.Add(new ConfigError(file, s.Where.Line, s.Where.Column, "datasets", "at least one dataset is required (e.g. shapes, coco_caption)"));
        return result;
    }

    /// <summary>
    /// vis_processor.{train,eval} as LAVIS's BLIP image processors. One image_size serves both (the model has one input
    /// size): a phase that omits it takes the other's. min_scale/max_scale only exist for the random-crop processors.
    /// </summary>
    private static (VisProcessorOptions Train, VisProcessorOptions Eval, TrainVisSource Source) ReadVisProcessors(YamlSection vp)
    {
        var t = vp.Section("train");
        var e = vp.Section("eval");
        var trainName = t.GetString("name", VisProcessorOptions.BlipImageTrain, VisProcessorOptions.Names);
        // Evaluation and SCST rollouts must see fixed pixels: only the deterministic processor is allowed there.
        var evalName = e.GetString("name", VisProcessorOptions.BlipImageEval, VisProcessorOptions.BlipImageEval);
        var trainSize = t.GetOptionalInt("image_size", 8);
        var evalSize = e.GetOptionalInt("image_size", 8);
        if (trainSize is int ts && evalSize is int es && ts != es)
            e.Error("image_size", e.Where, $"train image_size {ts} and eval image_size {es} differ; the model has one input size: set both to the same value");
        var size = evalSize ?? trainSize ?? 224;

        var minScale = 0.5;
        var maxScale = 1.0;
        if (VisProcessorOptions.IsRandom(trainName))
        {
            minScale = t.GetDouble("min_scale", 0.5, 0, 1, minExclusive: true);
            maxScale = t.GetDouble("max_scale", 1.0, 0, 1, minExclusive: true);
            if (minScale > maxScale) t.Error("min_scale", t.Where, $"min_scale ({minScale}) must not exceed max_scale ({maxScale})");
        }
        else
            foreach (var key in new[] { "min_scale", "max_scale" })
                if (t.Has(key)) t.Error(key, t.Where, $"{key} has no effect with {trainName} (no random crop): remove it, or use blip_image_train / blip2_image_train");
        foreach (var key in new[] { "min_scale", "max_scale" })
            if (e.Has(key)) e.Error(key, e.Where, $"{key} belongs to the train processor (vis_processor.train); evaluation only resizes");

        var trainMean = ReadTriple(t, "mean", positive: false);
        var trainStd = ReadTriple(t, "std", positive: true);
        var evalMean = ReadTriple(e, "mean", positive: false);
        var evalStd = ReadTriple(e, "std", positive: true);
        var source = new TrainVisSource(t.Where, t.Has("name"), t.Has("min_scale") || t.Has("max_scale"), t.Has("mean") || t.Has("std"));
        t.Finish();
        e.Finish();
        vp.Finish();
        return (VisProcessorOptions.Create(trainName, size, minScale, maxScale, trainMean, trainStd),
            VisProcessorOptions.Create(evalName, size, mean: evalMean, std: evalStd), source);
    }

    private readonly record struct TrainVisSource(Mark Where, bool NameGiven, bool ScaleGiven, bool StatsGiven);

    /// <summary>
    /// SCST generates the K captions of an image from the eval transform's pixels (they must see the same image), so
    /// vis_processor.train defaults to blip_image_eval there and anything that would only change CE's pixels is refused.
    /// </summary>
    private static IReadOnlyDictionary<string, DatasetOptions> ScstTrainVisProcessors(IReadOnlyDictionary<string, DatasetOptions> datasets,
        Dictionary<string, TrainVisSource> sources, List<ConfigError> errors, string file)
    {
        var result = new Dictionary<string, DatasetOptions>(StringComparer.Ordinal);
        foreach (var (name, d) in datasets)
        {
            result[name] = d;
            if (d.TrainVisProcessor is not { } t || d.EvalVisProcessor is not { } e || !sources.TryGetValue(name, out var src)) continue;
            void Refuse(string key, string what) => errors.Add(new ConfigError(file, src.Where.Line, src.Where.Column,
                $"datasets.{name}.vis_processor.train.{key}",
                $"{what}: SCST rolls out and trains on the eval transform's pixels (vis_processor.eval), so the K captions of an image see the same image; remove it or use blip_image_eval"));
            if (src.NameGiven && VisProcessorOptions.IsRandom(t.Name)) Refuse("name", $"{t.Name} has no effect in an SCST run");
            else if (src.ScaleGiven && VisProcessorOptions.IsRandom(t.Name)) Refuse("min_scale", "min_scale/max_scale have no effect in an SCST run");
            else if (src.StatsGiven && !(t.Mean.SequenceEqual(e.Mean) && t.Std.SequenceEqual(e.Std)))
                Refuse("mean", "a train mean/std different from eval's has no effect in an SCST run");
            result[name] = d with { TrainVisProcessor = e };
        }
        return result;
    }

    private static double[]? ReadTriple(YamlSection s, string key, bool positive)
    {
        var values = s.GetDoubleList(key);
        if (values is null) return null;
        if (values.Count != 3 || values.Any(v => !double.IsFinite(v) || (positive && v <= 0)))
        {
            s.Error(key, s.Where, $"expected 3 numbers (R, G, B){(positive ? ", each > 0" : "")}, got [{string.Join(", ", values.Select(v => v.ToString(CultureInfo.InvariantCulture)))}]");
            return null;
        }
        return values.ToArray();
    }

    private static RunOptions ReadRun(YamlSection s)
    {
        var maxEpoch = s.GetOptionalInt("max_epoch", 1);
        var maxIters = s.GetOptionalInt("max_iters", 1);
        if (maxEpoch is null && maxIters is null)
            s.Error("max_epoch", s.Where, "set max_epoch or max_iters (how long to train)");
        var minLen = s.GetInt("min_len", 1, 0);
        var maxLen = s.GetInt("max_len", 30, 1);
        if (minLen > maxLen) s.Error("min_len", s.Where, $"min_len ({minLen}) must not exceed max_len ({maxLen})");
        var initLr = s.GetDouble("init_lr", 1e-4, 0, minExclusive: true);
        var minLr = s.GetDouble("min_lr", 0, 0);
        if (minLr > initLr) s.Error("min_lr", s.Where, $"min_lr ({minLr}) must not exceed init_lr ({initLr})");
        var run = new RunOptions(
            Task: s.GetString("task", "captioning", "captioning"),
            LrSched: s.GetString("lr_sched", "linear_warmup_cosine_lr", LrScheds),
            InitLr: initLr,
            MinLr: minLr,
            WarmupLr: s.GetDouble("warmup_lr", 1e-8, 0),
            WarmupSteps: s.GetInt("warmup_steps", 0, 0),
            WeightDecay: s.GetDouble("weight_decay", 0.05, 0),
            LrDecayRate: s.GetDouble("lr_decay_rate", 0.9, 0, 1, minExclusive: true),
            MaxEpoch: maxEpoch,
            MaxIters: maxIters,
            ItersPerInnerEpoch: s.GetOptionalInt("iters_per_inner_epoch", 1),
            BatchSizeTrain: s.GetInt("batch_size_train", 16, 1),
            BatchSizeEval: s.GetInt("batch_size_eval", 16, 1),
            AccumGradIters: s.GetInt("accum_grad_iters", 1, 1),
            MaxGradNorm: s.GetDouble("max_grad_norm", 0, 0),
            NumBeams: s.GetInt("num_beams", 5, 1),
            MaxLen: maxLen,
            MinLen: minLen,
            Seed: s.GetInt("seed", 42),
            OutputDir: s.GetString("output_dir", "output"),
            Amp: s.GetBool("amp", false),
            AmpDType: s.GetString("amp_dtype", "auto", "auto", "bf16", "fp32"),
            TrainSplits: s.GetStringList("train_splits", ["train"]),
            ValidSplits: s.GetStringList("valid_splits", ["val"]),
            TestSplits: s.GetStringList("test_splits", ["test"]),
            Device: s.GetString("device", "cpu"),
            WorldSize: s.GetInt("world_size", 1, 1),
            Distributed: s.GetBool("distributed", false),
            EvalEvery: s.GetInt("eval_every", 500, 1),
            EvalMaxImages: s.GetOptionalInt("eval_max_images", 1),
            CheckpointEvery: s.GetInt("checkpoint_every", 500, 1),
            EarlyStopPatience: s.GetInt("early_stop_patience", 0, 0),
            LabelSmoothing: s.GetDouble("label_smoothing", 0, 0, 1),
            ResumeCkptPath: s.GetOptionalString("resume_ckpt_path"),
            LibTorchDir: s.GetOptionalString("libtorch_dir"),
            Threads: s.GetInt("threads", 0, 0));
        var device = run.Device.ToLowerInvariant();
        if (device is not ("cpu" or "cuda" or "auto") && !System.Text.RegularExpressions.Regex.IsMatch(device, @"^cuda:\d+$"))
            s.Error("device", s.Where, $"expected cpu | cuda | cuda:N | auto, got '{run.Device}'");
        // LAVIS keys that only matter to its PyTorch launcher.
        s.GetInt("num_workers", 0, 0);
        s.GetOptionalString("dist_url");
        s.GetBool("evaluate", false);
        s.GetStringList("report_metric", []);
        s.Finish();
        return run;
    }

    private static ScstOptions ReadScst(YamlSection s)
    {
        var r = s.Section("reward");
        var reward = new RewardOptions(
            Metric: r.GetString("metric", "cider_d", "cider_d"),
            Sigma: r.GetDouble("sigma", 6.0, 0, minExclusive: true),
            N: r.GetInt("n", 4, 1, 8),
            Df: r.GetString("df", "train", "train", "corpus"),
            DfFile: r.GetOptionalString("df_file"),
            EosToken: r.GetBool("eos_token", false));
        r.Finish();
        var sampling = s.GetString("sampling", "beam", Samplings);
        var baseline = s.GetString("baseline", sampling == "beam" ? "mean" : "leave_one_out", Baselines);
        var beamSize = s.GetInt("beam_size", 5, 1);
        var sampleN = s.GetInt("sample_n", beamSize, 1);
        if (baseline == "leave_one_out" && (sampling == "beam" ? beamSize : sampleN) < 2)
            s.Error("baseline", s.Where, "the leave_one_out baseline needs at least 2 captions per image (beam_size / sample_n >= 2)");
        var opts = new ScstOptions(
            Enabled: s.IsPresent && s.GetBool("enabled", true),
            Baseline: baseline,
            Sampling: sampling,
            BeamSize: beamSize,
            SampleN: sampleN,
            Temperature: s.GetDouble("temperature", 1.0, 0, minExclusive: true),
            TopK: s.GetInt("top_k", 0, 0),
            TopP: s.GetDouble("top_p", 1.0, 0, 1, minExclusive: true),
            LossNormalization: s.GetString("loss_normalization", "length_mean", "length_mean", "sum", "token_mean"),
            Reward: reward,
            Mode: s.GetString("mode", "sync", Modes),
            MaxStaleness: s.GetInt("max_staleness", 0, 0),
            IsClip: s.GetDouble("is_clip", 1.0, 0, minExclusive: true),
            RolloutSplits: s.GetInt("rollout_splits", 1, 1));
        if (!s.IsPresent) s.GetBool("enabled", false);
        s.Finish();
        return opts;
    }
}
