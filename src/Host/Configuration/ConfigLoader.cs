using Scst.Training;
using Scst.Training.Configuration;
using Scst.Model.Data.Transforms;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Scst.Host.Configuration;

/// <summary>
/// Loads a YAML config (LAVIS's schema plus our scst section) into <see cref="ScstConfig"/>. Every problem found is
/// reported at once, each with file, line, column and key, before any work starts.
/// </summary>
/// <summary>
/// Loads a YAML config (LAVIS's schema plus our scst section) into <see cref="ScstConfig"/>. Every problem found is
/// reported at once, each with file, line, column and key, before any work starts. Every value read is traced with its
/// source (<see cref="ConfigTrace"/>); a LAVIS model-type file (<c>model</c> + <c>preprocess</c>) validates on its own.
/// </summary>
public static partial class ConfigLoader
{
    public static readonly string[] Baselines = ConfigChoices.Baseline.Names;
    public static readonly string[] Samplings = ConfigChoices.Sampling.Names;
    public static readonly string[] Modes = ConfigChoices.Mode.Names;
    public static readonly string[] LrScheds = ["linear_warmup_cosine_lr", "linear_warmup_step_lr", "constant_lr"];
    public static readonly string[] DatasetFormats = ["karpathy", "lavis", "flickr", "shapes"];

    public static ScstConfig Load(string path) => Require(LoadTraced(path), path);

    public static ScstConfig Parse(string yaml, string file) => Require(ParseTraced(yaml, file), file);

    /// <summary>A training config, or a LAVIS model-type file (<see cref="LoadedConfig.Config"/> null), with its trace.</summary>
    public static LoadedConfig LoadTraced(string path)
    {
        if (Directory.Exists(path))
            throw new ConfigException([new ConfigError(path, 0, 0, "", "is a directory; give the YAML config file")]);
        if (!File.Exists(path))
            throw new ConfigException([new ConfigError(path, 0, 0, "", "config file not found")]);
        return ParseTraced(ReadUtf8(path), path);
    }

    /// <summary>The file's text, refusing what is not UTF-8 (File.ReadAllText would silently turn bad bytes into U+FFFD).</summary>
    static string ReadUtf8(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException([new ConfigError(path, 0, 0, "", $"cannot be read ({e.Message})")]);
        }
        var text = bytes.AsSpan().StartsWith("\uFEFF"u8) ? bytes.AsSpan(3) : bytes;
        var chars = new char[text.Length];
        if (System.Text.Unicode.Utf8.ToUtf16(text, chars, out var read, out var written, replaceInvalidSequences: false) == System.Buffers.OperationStatus.Done)
            return new string(chars, 0, written);
        var before = text[..read];
        var line = before.Count((byte)'\n') + 1;
        var column = read - (before.LastIndexOf((byte)'\n') + 1) + 1;
        throw new ConfigException([new ConfigError(path, line, column, "",
            $"not UTF-8 text (byte 0x{text[read]:X2}); save the file as UTF-8")]);
    }

    private static ScstConfig Require(LoadedConfig c, string file) => c.Config ?? throw new ConfigException([new ConfigError(file, 1, 1, "",
        "a LAVIS model-type file (model and preprocess only) describes a model, not a run: name its model_type in a training config with datasets and run")]);

    public static LoadedConfig ParseTraced(string yaml, string file)
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

        var trace = new ConfigTrace();
        var root = new YamlSection(rootNode, rootNode.Start, file, "", errors, trace);
        var modelSection = root.Section("model");
        var model = ReadModel(modelSection);
        if (root.Has("preprocess") && !root.Has("datasets") && !root.Has("run"))
        {
            // LAVIS's configs/models/*.yaml: the model and the processors load_model_and_preprocess builds.
            var pre = root.Section("preprocess");
            var (size, _, _, prompts, _) = ReadProcessors(pre, model);
            model = Reconcile(modelSection, model, new Dictionary<string, DatasetOptions>
            {
                ["preprocess"] = new("preprocess", "", null, null, size, null, 50, "error", null),
            }, prompts);
            pre.Finish();
            root.Finish();
            if (errors.Count > 0) throw new ConfigException(errors);
            return new LoadedConfig(null, trace, "LAVIS model-type file");
        }
        root.Refuse("preprocess", "a LAVIS model-type file's section; in a training config set datasets.<name>.vis_processor and text_processor");
        var trainVis = new Dictionary<string, TrainVisSource>(StringComparer.Ordinal);
        var (datasets, textPrompts) = ReadDatasets(root.Section("datasets"), errors, file, model, trainVis);
        model = Reconcile(modelSection, model, datasets, textPrompts);
        var run = ReadRun(root.Section("run"));
        var scst = ReadScst(root.Section("scst"));
        if (scst.Enabled) datasets = ScstTrainVisProcessors(datasets, trainVis, errors, file);
        root.Finish();

        if (errors.Count > 0) throw new ConfigException(errors);
        return new LoadedConfig(new ScstConfig(model, datasets, run, scst, Path.GetFullPath(file)), trace, scst.Enabled ? "scst" : "ce");
    }

    private static (IReadOnlyDictionary<string, DatasetOptions>, IReadOnlyDictionary<string, (string, string)>) ReadDatasets(
        YamlSection s, List<ConfigError> errors, string file, ModelOptions model, Dictionary<string, TrainVisSource> trainVis)
    {
        var result = new Dictionary<string, DatasetOptions>(StringComparer.Ordinal);
        var prompts = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
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
            else if (d.SourceOf("format") is null) d.Resolve("format", format, $"default from the dataset name '{name}'");

            var b = d.Section("build_info");
            var annotations = b.GetOptionalString("annotations");
            var images = b.GetOptionalString("images");
            if (format is not null and not "shapes" && annotations is null)
                b.Error("annotations", b.Where, $"a {format} dataset needs build_info.annotations (the annotation file)");
            if (format == "shapes" && images is null)
                b.Error("images", b.Where, "the shapes dataset needs build_info.images (the folder it is generated into)");
            b.Finish();

            var (imageSize, trainPrompt, maxWords, prompt, vis) = ReadProcessors(d, model);
            trainVis[name] = vis.Source;
            foreach (var kv in prompt) prompts[name] = kv.Value;

            var missing = d.GetString("missing_images", "error", "error", "skip");
            d.GetString("data_type", "images", "images");

            ShapesOptions? shapes = null;
            var sh = d.Section("shapes");
            if (format == "shapes")
                shapes = new ShapesOptions(sh.GetInt("seed", 1234), sh.GetInt("train", 6000, 1), sh.GetInt("val", 500, 1), sh.GetInt("test", 1000, 1));
            sh.Finish();
            d.Finish();
            result[name] = new DatasetOptions(name, format ?? "", annotations, images, imageSize, trainPrompt, maxWords, missing, shapes,
                vis.Train, vis.Eval);
        }
        if (result.Count == 0)
            errors.Add(new ConfigError(file, s.Where.Line, s.Where.Column, "datasets", "at least one dataset is required (e.g. shapes, coco_caption)"));
        return (result, prompts);
    }

    /// <summary>
    /// vis_processor and text_processor of a dataset (or of a LAVIS model file's preprocess section). The image size
    /// defaults to model.image_size (a preset's too), then 224; eval defaults to train's and is the one the data uses.
    /// </summary>
    private static (int ImageSize, string? TrainPrompt, int MaxWords, Dictionary<string, (string, string)> Prompt, VisProcessors Vis) ReadProcessors(
        YamlSection d, ModelOptions model)
    {
        var vis = ReadVisProcessors(d.Section("vis_processor"), model.ImageSize ?? 224,
            model.ImageSize is null ? ConfigTrace.Default : "model.image_size");
        var imageSize = vis.Eval.ImageSize;

        string? trainPrompt = null;
        var prompts = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        var maxWords = 50;
        var tp = d.Section("text_processor");
        foreach (var phase in new[] { "train", "eval" })
        {
            var p = tp.Section(phase);
            p.GetString("name", "blip_caption", "blip_caption");
            if (phase == "train")
            {
                trainPrompt = p.GetOptionalString("prompt");
                if (trainPrompt is not null) prompts[d.Path] = (trainPrompt, p.SourceOf("prompt")!);
            }
            else p.Refuse("prompt", "LAVIS's caption eval datasets pass no text, so an eval prompt is never used; the prompt generation sees is model.prompt");
            maxWords = p.GetInt("max_words", maxWords, 1);
            p.Finish();
        }
        tp.Finish();
        return (imageSize, trainPrompt, maxWords, prompts, vis);
    }

    public static readonly string[] Runners = ["runner_base", "runner_iter"];
    public static readonly string[] CeSampleUnits = ConfigChoices.CeSampleUnit.Names;
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
            NumWorkers: s.GetOptionalInt("num_workers", 0),
            Runner: runner,
            CeSampleUnit: ConfigChoices.CeSampleUnit.Parse(s.GetString("ce_sample_unit", "caption", CeSampleUnits)),
            BestMetric: s.GetString("best_metric", "CIDEr", BestMetrics),
            Beta2: beta2,
            LrLayerDecay: s.GetDouble("lr_layer_decay", 1.0, 0, 1, minExclusive: true),
            LogFreq: s.GetInt("log_freq", UpdateLog.DefaultEvery, 0),
            MaxNonfinite: s.GetInt("max_nonfinite", 5, 1));
        if (double.IsInfinity(run.RepetitionPenalty)) s.Error("repetition_penalty", s.Where, "expected a finite number > 0 (1.0 = no penalty)");
        if (double.IsInfinity(run.LengthPenalty)) s.Error("length_penalty", s.Where, "expected a finite number (1.0 = HF's default; > 0 favours longer beams, < 0 shorter)");
        if (double.IsInfinity(run.Temperature)) s.Error("temperature", s.Where, "expected a finite number > 0");
        // LAVIS passes num_beams along with do_sample, which transformers runs as beam sampling; that is not implemented here.
        if (run.UseNucleusSampling && run.NumBeams > 1)
            s.Error("use_nucleus_sampling", s.Where, $"nucleus sampling draws one caption per image (num_beams: 1); with num_beams {run.NumBeams} transformers would beam-sample, which is not implemented: set num_beams: 1 or use_nucleus_sampling: false");
        var device = run.Device.ToLowerInvariant();
        if (device is not ("cpu" or "cuda" or "auto") && !System.Text.RegularExpressions.Regex.IsMatch(device, @"^cuda:\d+$"))
            s.Error("device", s.Where, $"expected cpu | cuda | cuda:N | auto, got '{run.Device}'");
        ReadLavisRunner(s, run);
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
            Baseline: ConfigChoices.Baseline.Parse(baseline),
            Sampling: ConfigChoices.Sampling.Parse(sampling),
            BeamSize: beamSize,
            SampleN: sampleN,
            Temperature: s.GetDouble("temperature", 1.0, 0, minExclusive: true),
            TopK: s.GetInt("top_k", 0, 0),
            TopP: s.GetDouble("top_p", 1.0, 0, 1, minExclusive: true),
            LossNormalization: ConfigChoices.LossNormalization.Parse(s.GetString("loss_normalization", "length_mean", ConfigChoices.LossNormalization.Names)),
            Reward: reward,
            Mode: ConfigChoices.Mode.Parse(s.GetString("mode", "sync", Modes)),
            MaxStaleness: s.GetInt("max_staleness", 0, 0),
            IsClip: s.GetDouble("is_clip", 1.0, 0, minExclusive: true));
        s.Refuse("rollout_splits", "sync mode spreads each update over every rollout worker present; remove the key");
        if (!s.IsPresent) s.GetBool("enabled", false);
        s.Finish();
        return opts;
    }
}
