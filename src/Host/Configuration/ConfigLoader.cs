using Scst.Actors.Configuration;
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
        var datasets = ReadDatasets(root.Section("datasets"), errors, file);
        var run = ReadRun(root.Section("run"));
        var scst = ReadScst(root.Section("scst"));
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

    private static IReadOnlyDictionary<string, DatasetOptions> ReadDatasets(YamlSection s, List<ConfigError> errors, string file)
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

            var imageSize = 224;
            var vp = d.Section("vis_processor");
            foreach (var phase in new[] { "train", "eval" })
            {
                var p = vp.Section(phase);
                p.GetString("name", phase == "train" ? "blip_image_train" : "blip_image_eval",
                    "blip_image_train", "blip_image_eval", "blip2_image_train");
                imageSize = p.GetInt("image_size", imageSize, 8);
                p.Finish();
            }
            vp.Finish();

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
            result[name] = new DatasetOptions(name, format ?? "", annotations, images, imageSize, trainPrompt, maxWords, missing, shapes);
        }
        if (result.Count == 0)
            errors.Add(new ConfigError(file, s.Where.Line, s.Where.Column, "datasets", "at least one dataset is required (e.g. shapes, coco_caption)"));
        return result;
    }

    public static readonly string[] Runners = ["runner_base", "runner_iter"];
    public static readonly string[] CeSampleUnits = ["caption", "image"];
    // The evaluator's corpus metrics (coco-caption names) and LAVIS's captioning agg_metrics (CIDEr + Bleu_4).
    public static readonly string[] BestMetrics = ["CIDEr", "agg_metrics", "Bleu_4", "Bleu_3", "Bleu_2", "Bleu_1", "ROUGE_L"];

    private static RunOptions ReadRun(YamlSection s)
    {
        var maxEpoch = s.GetOptionalInt("max_epoch", 1);
        var maxIters = s.GetOptionalInt("max_iters", 1);
        var runner = s.GetOptionalString("runner", Runners);
        var itersPerInnerEpoch = s.GetOptionalInt("iters_per_inner_epoch", 1);
        switch (runner)
        {
            case null when maxEpoch is null && maxIters is null:
                s.Error("max_epoch", s.Where, "set max_epoch or max_iters (how long to train)");
                break;
            case "runner_base":
                if (maxIters is not null)
                    s.Error("max_iters", s.Where, "runner_base trains max_epoch epochs; remove max_iters, or use runner: runner_iter");
                if (itersPerInnerEpoch is not null)
                    s.Error("iters_per_inner_epoch", s.Where, "runner_base has no inner epochs; remove iters_per_inner_epoch, or use runner: runner_iter");
                if (maxEpoch is null) s.Error("max_epoch", s.Where, "runner_base needs max_epoch (how many epochs to train)");
                break;
            case "runner_iter":
                if (maxEpoch is not null)
                    s.Error("max_epoch", s.Where, "runner_iter trains max_iters iterations; remove max_epoch, or use runner: runner_base");
                if (maxIters is null) s.Error("max_iters", s.Where, "runner_iter needs max_iters (how many iterations to train)");
                if (itersPerInnerEpoch is null)
                    s.Error("iters_per_inner_epoch", s.Where, "runner_iter needs iters_per_inner_epoch (iterations per inner epoch: validation and LR schedule)");
                break;
        }
        var beta2 = s.GetDouble("beta2", 0.999, 0, 1);
        if (beta2 >= 1) s.Error("beta2", s.Where, "beta2 must be below 1 (AdamW divides by 1 - beta2^t)");
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
            ItersPerInnerEpoch: itersPerInnerEpoch,
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
            Threads: s.GetInt("threads", 0, 0),
            RepetitionPenalty: s.GetDouble("repetition_penalty", 1.0, 0, minExclusive: true),
            LengthPenalty: s.GetDouble("length_penalty", 1.0),
            UseNucleusSampling: s.GetBool("use_nucleus_sampling", false),
            TopP: s.GetDouble("top_p", 0.9, 0, 1, minExclusive: true),
            Temperature: s.GetDouble("temperature", 1.0, 0, minExclusive: true),
            Runner: runner,
            CeSampleUnit: s.GetString("ce_sample_unit", "caption", CeSampleUnits),
            BestMetric: s.GetString("best_metric", "CIDEr", BestMetrics),
            Beta2: beta2,
            LrLayerDecay: s.GetDouble("lr_layer_decay", 1.0, 0, 1, minExclusive: true));
        if (double.IsInfinity(run.RepetitionPenalty)) s.Error("repetition_penalty", s.Where, "expected a finite number > 0 (1.0 = no penalty)");
        if (double.IsInfinity(run.LengthPenalty)) s.Error("length_penalty", s.Where, "expected a finite number (1.0 = HF's default; > 0 favours longer beams, < 0 shorter)");
        if (double.IsInfinity(run.Temperature)) s.Error("temperature", s.Where, "expected a finite number > 0");
        // LAVIS passes num_beams along with do_sample, which transformers runs as beam sampling; that is not implemented here.
        if (run.UseNucleusSampling && run.NumBeams > 1)
            s.Error("use_nucleus_sampling", s.Where, $"nucleus sampling draws one caption per image (num_beams: 1); with num_beams {run.NumBeams} transformers would beam-sample, which is not implemented: set num_beams: 1 or use_nucleus_sampling: false");
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
