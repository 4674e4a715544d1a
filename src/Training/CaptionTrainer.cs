using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;
using Scst.Model;
using Scst.Model.Generation;
using Scst.Model.Optim;
using Scst.Model.Tokenization;
using Scst.Reward;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>How a run is driven: where it writes, whether it resumes, and (for tests and drills) where it stops early.</summary>
public sealed record TrainerOptions(string RunDir, bool Resume = false, int? StopAfterUpdates = null);

/// <summary>A progress report after each update (phase "ce" / "scst") or evaluation batch (phase "eval:val" ...).</summary>
public sealed record TrainingProgress(string Phase, long Done, long Total, IReadOnlyDictionary<string, double> Last);

/// <summary>The run's outcome, also written to <c>summary.json</c>.</summary>
public sealed record TrainSummary(
    string Mode,
    long Updates,
    long SamplesConsumed,
    double ElapsedS,
    string FinalCheckpointSha256,
    string FinalCheckpoint,
    string? BestCheckpoint,
    long? BestStep,
    bool Completed,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> Metrics,
    IReadOnlyDictionary<string, object> Settings);

/// <summary>
/// The single-process trainer: cross-entropy pre-training, or SCST fine-tuning from a CE checkpoint, over the Model and
/// Reward libraries. Each update is one optimizer step over <c>accum_grad_iters</c> micro-batches. The actors run the
/// same steps (<see cref="CeStep"/>, <see cref="Rollout"/>, <see cref="ScoreRollout"/>, <see cref="ScstStep"/>).
/// </summary>
public sealed class CaptionTrainer : IDisposable
{
    private readonly ScstConfig _config;
    private readonly TrainerOptions _options;
    private readonly IMetricsSink _metrics;
    private readonly ILogger _log;
    private readonly CheckpointStore _store;
    private readonly CaptionCorpus _corpus;
    private readonly AdamW _optimizer;
    private readonly ILrScheduler _scheduler;
    private readonly CiderDReward? _reward;
    private readonly Generator _sampling;
    private readonly UpdatePlan _plan;
    // CE by caption: sample s is (image, caption index) in the order of the training references.
    private readonly (int Image, int Caption)[]? _captionSamples;

    public CaptioningPolicy Policy { get; }
    /// <summary>The pretrained folder the model sits on (null for a model built from scratch).</summary>
    public PretrainedBase? Base { get; }
    public ParameterReport Parameters { get; }
    /// <summary>Called after every update and evaluation batch (progress bars).</summary>
    public Action<TrainingProgress>? Progress { get; set; }
    public CaptionCorpus Corpus => _corpus;
    public ScstConfig Config => _config;
    public bool IsScst => _config.IsScst;
    /// <summary>Optimizer updates per (inner) epoch; see <see cref="UpdatePlan"/>.</summary>
    public int UpdatesPerEpoch => _plan.UpdatesPerEpoch;
    public long TotalUpdates => _plan.TotalUpdates;
    /// <summary>How updates map onto micro-batches, epochs and the LR schedule (<c>run.runner</c>).</summary>
    public UpdatePlan Plan => _plan;
    /// <summary>True when a CE epoch visits every (image, caption) annotation once (<c>run.ce_sample_unit: caption</c>).</summary>
    public bool CeByCaption => _captionSamples is not null;
    /// <summary>What the data cursor walks: CE's annotations with <see cref="CeByCaption"/>, training images otherwise.</summary>
    public int TrainSamples => _captionSamples?.Length ?? _corpus.Train.Count;
    /// <summary>The optimizer's parameter groups (weight decay and LR scale each).</summary>
    public IReadOnlyList<ParameterGroup> OptimizerGroups => _optimizer.Groups;

    public CaptionTrainer(ScstConfig config, TrainerOptions options, IMetricsSink metrics, ILogger log, Action<TrainingProgress>? progress = null)
    {
        _config = config; _options = options; _metrics = metrics; _log = log; Progress = progress;
        var run = config.Run;
        TorchRuntime.Initialize(run.LibTorchDir);
        if (run.Threads > 0) set_num_threads(run.Threads);
        var device = TorchRuntime.ResolveDevice(run.Device);
        Directory.CreateDirectory(options.RunDir);
        _store = new CheckpointStore(Path.Combine(options.RunDir, "checkpoints"));

        _corpus = CaptionCorpus.Load(config, log);
        _log.LogInformation("Data: {Train} train, {Val} val, {Test} test images", _corpus.Train.Count, _corpus.Val.Count, _corpus.Test.Count);

        var tokenizer = LoadOrBuildTokenizer();
        var (model, pretrained) = PolicyModel.Build(config.Model, tokenizer.VocabSize, _corpus.ImageSize, run.Seed, device, log);
        Base = pretrained;
        if (config.Model.LoadFinetuned) LoadModelWeights(model, config.Model.Finetuned!, pretrained);
        model.to(device);
        Parameters = PolicyModel.Report(model);
        _log.LogInformation("Model: {Report}", Parameters);
        Policy = new CaptioningPolicy(model, tokenizer, config.Model.Prompt, config.Model.MaxTxtLen, device, PolicyModel.AmpDType(run, device, log));

        _optimizer = ParameterGroups.LavisAdamW(model, run.InitLr, run.WeightDecay, run.Beta2, run.LrLayerDecay);
        if (run.LrLayerDecay != 1.0 && !_optimizer.Groups.Any(g => g.Name.StartsWith("vit_layer_", StringComparison.Ordinal)))
            _log.LogInformation("run.lr_layer_decay {Decay}: no ViT parameter trains (model.freeze_vit), so every group keeps scale 1", run.LrLayerDecay);
        if (!IsScst && run.CeSampleUnit == "caption")
            _captionSamples = [.. _corpus.Train.References.SelectMany((refs, i) => refs.Select((_, c) => (i, c)))];
        _plan = UpdatePlan.Create(run, TrainSamples);
        _scheduler = _plan.Scheduler(run, _optimizer);

        _sampling = new Generator((ulong)run.Seed, device);
        if (IsScst) _reward = new CiderDReward(TrainDocumentFrequency(config, _corpus));
    }

    /// <summary>CIDEr-D document frequencies of the training references (or the configured df_file), as the reward uses them.</summary>
    public static DocumentFrequency TrainDocumentFrequency(ScstConfig config, CaptionCorpus corpus)
    {
        var r = config.Scst.Reward;
        DocumentFrequency df;
        if (r.DfFile is not null && File.Exists(r.DfFile)) df = DocumentFrequency.Load(r.DfFile);
        else
        {
            df = DocumentFrequency.Build(corpus.Train.References, r.EosToken, Environment.ProcessorCount);
            if (r.DfFile is not null) df.Save(r.DfFile);
        }
        if (df.CountsEos != r.EosToken)
            throw new InvalidDataException($"scst.reward.df_file '{r.DfFile}' was built with eos_token = {df.CountsEos}, but the config says {r.EosToken}");
        return df;
    }

    private ICaptionTokenizer LoadOrBuildTokenizer()
    {
        var t = _config.Model.Tokenizer;
        if (t.Type == "sentencepiece") return SentencePieceTokenizer.Load(t.Path!);
        if (t.Path is not null && File.Exists(t.Path)) return WordTokenizer.Load(t.Path);
        var own = Path.Combine(_store.Directory, "tokenizer.json");
        if (File.Exists(own)) return WordTokenizer.Load(own);
        // SCST must keep the CE model's vocabulary: take the tokenizer saved beside the fine-tuned checkpoint.
        if (_config.Model.LoadFinetuned)
        {
            var beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(_config.Model.Finetuned!))!, "tokenizer.json");
            if (!File.Exists(beside))
                throw new FileNotFoundException($"model.finetuned: no tokenizer.json beside '{_config.Model.Finetuned}'; the word vocabulary must be the CE run's", beside);
            var tok = WordTokenizer.Load(beside);
            Directory.CreateDirectory(_store.Directory);
            tok.Save(own);
            return tok;
        }
        var built = WordTokenizer.Build(_corpus.Train.References.SelectMany(r => r), t.MinFreq);
        Directory.CreateDirectory(_store.Directory);
        built.Save(t.Path ?? own);
        if (t.Path is not null) built.Save(own);
        return built;
    }

    /// <summary>Model weights from one of our checkpoints: a pointer (<c>best.json</c>) or a <c>.safetensors</c> file with its <c>.sha256</c>.</summary>
    // The model's tensors of a checkpoint; its optimizer moments (twice the model) are not read where only weights are wanted.
    private static bool ModelTensor(string name) => name.StartsWith("model.", StringComparison.Ordinal);

    internal static void LoadModelWeights(Scst.Model.Blip2.Blip2T5 model, string path, PretrainedBase? pretrained)
    {
        Dictionary<string, Tensor> tensors;
        JsonObject state;
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            var store = new CheckpointStore(Path.GetDirectoryName(Path.GetFullPath(path))!);
            (tensors, state, _) = store.Load(Path.GetFileNameWithoutExtension(path), ModelTensor);
        }
        else (tensors, state) = CheckpointStore.LoadFile(path, CheckpointStore.ReadSidecar(path), ModelTensor);
        try { PolicyModel.Apply(model, tensors, pretrained, PretrainedBase.Recorded(state), path); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    // ----------------------------------------------------------------------------------------------------------
    // The steps (shared with the actors)

    /// <summary>
    /// One CE micro-batch of data epoch <paramref name="epoch"/> (<paramref name="batch"/>: cursor samples, see
    /// <see cref="TrainSamples"/>): loss (divided by accum_grad_iters, as LAVIS) backpropagated; returns the loss.
    /// </summary>
    public double CeStep(int[] batch, int epoch)
    {
        using var scope = NewDisposeScope();
        Policy.Model.train();
        var (images, captions) = CeSamples(batch, epoch);
        // CE sees the train transform (random crop/flip/RandomAugment by default), drawn per (seed, epoch, sample): by
        // caption every annotation gets its own draw, as each LAVIS __getitem__ does.
        var pixels = _corpus.Train.TrainPixels(images, epoch, Policy.Device, CeByCaption ? batch.Select(i => (long)i).ToArray() : null);
        var loss = Policy.CrossEntropy(pixels, captions, _config.Run.LabelSmoothing);
        (loss / _config.Run.AccumGradIters).backward();
        return loss.item<float>();
    }

    /// <summary>The images and captions of CE cursor samples: an annotation each, or per image one caption picked by <see cref="PickCaption"/>.</summary>
    public (int[] Images, List<string> Captions) CeSamples(int[] batch, int epoch)
    {
        if (_captionSamples is null) return (batch, batch.Select(i => PickCaption(i, epoch)).ToList());
        var refs = _corpus.Train.References;
        return ([.. batch.Select(s => _captionSamples[s].Image)], [.. batch.Select(s => refs[_captionSamples[s].Image][_captionSamples[s].Caption])]);
    }

    // ce_sample_unit image: each visit of an image picks one caption, rotating with the epoch.
    private string PickCaption(int image, int epoch)
    {
        var refs = _corpus.Train.References[image];
        var h = (ulong)image * 0x9E3779B97F4A7C15UL ^ (ulong)epoch * 0xC2B2AE3D27D4EB4FUL;
        return refs[(int)((h >> 17) % (ulong)refs.Count)];
    }

    /// <summary>
    /// Generates K captions per image with the current policy, in eval mode and without gradients. With
    /// <c>scst.rollout_splits</c> = S the batch is generated as the S parts of <see cref="RolloutParts"/>, each from its
    /// own seed, and concatenated: exactly what a sync learner gets back from S rollout actors given one part each.
    /// </summary>
    public RolloutBatch Rollout(int[] batch, long policyVersion, ulong samplingSeed)
    {
        var parts = RolloutParts(batch, samplingSeed, _config.Scst.RolloutSplits);
        if (parts.Count == 1) return RolloutPart(batch, policyVersion, samplingSeed);
        return RolloutBatch.Concat([.. parts.Select(p => RolloutPart(p.Ids, policyVersion, p.Seed))], Policy.Tokenizer.PadId);
    }

    /// <summary>
    /// A micro-batch cut into min(splits, images) contiguous parts; part 0 keeps the micro-batch's seed (so one part is
    /// the unsplit rollout) and part p draws from a seed mixed from it and p.
    /// </summary>
    public static IReadOnlyList<(int[] Ids, ulong Seed)> RolloutParts(int[] batch, ulong samplingSeed, int splits)
    {
        var n = Math.Max(1, Math.Min(splits, batch.Length));
        var parts = new List<(int[], ulong)>(n);
        for (var p = 0; p < n; p++)
        {
            int from = batch.Length * p / n, to = batch.Length * (p + 1) / n;
            parts.Add((batch[from..to], p == 0 ? samplingSeed : (samplingSeed ^ ((ulong)p * 0x9E3779B97F4A7C15UL)) * 0xBF58476D1CE4E5B9UL));
        }
        return parts;
    }

    /// <summary>One generation call: K captions for each image of <paramref name="batch"/> from <paramref name="samplingSeed"/>.</summary>
    public RolloutBatch RolloutPart(int[] batch, long policyVersion, ulong samplingSeed)
    {
        using var scope = NewDisposeScope();
        var s = _config.Scst;
        var k = s.Sampling == "beam" ? s.BeamSize : s.SampleN;
        Policy.Model.eval();
        _sampling.manual_seed((long)samplingSeed);
        var pixels = _corpus.Train.Pixels(batch, Policy.Device);
        using var gen = Policy.Generate(pixels, new GenerationOptions
        {
            NumBeams = s.Sampling == "beam" ? k : 1,
            NumReturnSequences = k,
            DoSample = s.Sampling == "sample",
            Temperature = s.Temperature, TopK = s.TopK, TopP = s.TopP,
            // Rollouts keep the model's own distribution apart from the scst section's warpers: no repetition penalty.
            MaxNewTokens = _config.Run.MaxLen, MinLength = _config.Run.MinLen,
            Generator = _sampling,
        });
        var seqs = gen.Sequences.cpu();
        var n = (int)seqs.shape[0];
        var len = (int)seqs.shape[1];
        var flat = seqs.data<long>().ToArray();
        var sequences = Enumerable.Range(0, n).Select(i => flat.AsSpan(i * len, len).ToArray()).ToArray();
        var mask = gen.TokenMask.to(ScalarType.Float32);
        var behaviour = (gen.TokenLogProbs * mask).sum(1).cpu().data<float>().ToArray();
        var lengths = mask.sum(1).to(ScalarType.Int32).cpu().data<int>().ToArray();
        return new RolloutBatch(batch, k, sequences, Policy.Decode(gen.Sequences), behaviour, lengths, policyVersion);
    }

    /// <summary>CIDEr-D rewards of the rollout (train-corpus df, all references of each image) and the advantages.</summary>
    public (double[] Rewards, double[] Advantages, double[]? GreedyRewards) ScoreRollout(RolloutBatch rollout)
    {
        var greedy = Baseline == BaselineKind.Greedy ? GreedyCaptions(rollout.ImageIndices) : null;
        return ScoreCaptions(_reward!, _corpus.Train.References, Baseline, rollout, greedy);
    }

    public BaselineKind Baseline => _config.Scst.Baseline switch
    {
        "greedy" => BaselineKind.Greedy,
        "leave_one_out" => BaselineKind.LeaveOneOut,
        _ => BaselineKind.MeanOfK,
    };

    /// <summary>The train references' CIDEr-D reward (df of the training references), built once per process.</summary>
    public CiderDReward? Reward => _reward;

    /// <summary>Greedy captions of training images with the current weights (the greedy baseline of Rennie et al.).</summary>
    public string[] GreedyCaptions(int[] batch)
    {
        using var scope = NewDisposeScope();
        Policy.Model.eval();
        var pixels = _corpus.Train.Pixels(batch, Policy.Device);
        using var g = Policy.Generate(pixels, EvaluationDecoding.Greedy(_config.Run));
        return Policy.Decode(g.Sequences);
    }

    /// <summary>
    /// The scoring half of SCST, free of the model: rewards against all references of each image, and advantages
    /// under <paramref name="kind"/>. Reward actors run this with the captions a rollout actor sent.
    /// </summary>
    public static (double[] Rewards, double[] Advantages, double[]? GreedyRewards) ScoreCaptions(CiderDReward reward,
        IReadOnlyList<IReadOnlyList<string>> trainReferences, BaselineKind kind, RolloutBatch rollout, string[]? greedyCaptions)
    {
        var refs = rollout.ImageIndices.Select(i => trainReferences[i]).ToList();
        var rewards = reward.Score(refs, rollout.Captions);
        double[]? greedy = null;
        if (kind == BaselineKind.Greedy)
            greedy = reward.Score(refs, greedyCaptions ?? throw new ArgumentException("the greedy baseline needs the greedy captions of the batch"));
        var adv = SelfCritical.Advantages(kind, rewards, rollout.K, greedy);
        return (rewards, adv, greedy);
    }

    /// <summary>Per-token log-probs (with gradients) and mask of the rollout's captions, and the advantages as a tensor.</summary>
    private (Tensor Lp, Tensor Mask, Tensor Advantages) TeacherForced(RolloutBatch rollout, double[] advantages)
    {
        Policy.Model.train();
        var pixels = _corpus.Train.Pixels(rollout.ImageIndices, Policy.Device);
        var seqs = tensor(rollout.Sequences.SelectMany(r => r).ToArray(), [rollout.Sequences.Length, rollout.Sequences[0].Length]).to(Policy.Device);
        var (lp, mask) = Policy.SequenceLogProbs(pixels, seqs);
        return (lp, mask, tensor(advantages.Select(a => (float)a).ToArray()).to(Policy.Device));
    }

    /// <summary>The learner's half: teacher-forced log-probs with gradients and the self-critical loss, backpropagated.</summary>
    public (double Loss, double[] NewLogProbs) ScstStep(RolloutBatch rollout, double[] advantages, double[]? importanceWeights = null)
    {
        using var scope = NewDisposeScope();
        var (lp, mask, adv) = TeacherForced(rollout, advantages);
        var isw = importanceWeights is null ? null : tensor(importanceWeights.Select(a => (float)a).ToArray()).to(Policy.Device);
        var loss = ScstLoss.Compute(lp, mask, adv, _config.Scst.LossNormalization, isw);
        (loss / _config.Run.AccumGradIters).backward();
        var newLp = (lp.detach() * mask.to(lp.dtype)).sum(1).cpu().data<float>().Select(v => (double)v).ToArray();
        return (loss.item<float>(), newLp);
    }

    /// <summary>
    /// The learner's half for stale rollouts (async SCST): the same loss with truncated importance weights
    /// <c>min(isClip, exp(log π_new(w) − log π_behaviour(w)))</c> on the sequence probability, computed from this forward
    /// pass (no gradient through the weights).
    /// </summary>
    public (double Loss, double[] NewLogProbs, double[] IsWeights) ScstStepOffPolicy(RolloutBatch rollout, double[] advantages, double isClip)
    {
        using var scope = NewDisposeScope();
        var (lp, mask, adv) = TeacherForced(rollout, advantages);
        var seqLp = (lp.detach() * mask.to(lp.dtype)).sum(1);
        var behaviour = tensor(rollout.BehaviourLogProbs).to(Policy.Device);
        var isw = (seqLp - behaviour).exp().clamp_max(isClip);
        var loss = ScstLoss.Compute(lp, mask, adv, _config.Scst.LossNormalization, isw);
        (loss / _config.Run.AccumGradIters).backward();
        return (loss.item<float>(), seqLp.cpu().data<float>().Select(v => (double)v).ToArray(), isw.cpu().data<float>().Select(v => (double)v).ToArray());
    }

    /// <summary>Sets the learning rate for update <paramref name="update"/>, clips, steps and clears gradients.</summary>
    public (double Lr, double GradNorm) ApplyUpdate(long update, int dataEpoch)
    {
        var (epoch, step) = _plan.ScheduleStep(update, dataEpoch);
        var lr = _scheduler.Step(epoch, step);
        var norm = _config.Run.MaxGradNorm > 0
            ? Gradients.ClipGlobalNorm(_optimizer.Parameters, _config.Run.MaxGradNorm)
            : double.NaN;
        _optimizer.Step();
        _optimizer.ZeroGrad();
        return (lr, norm);
    }

    // ----------------------------------------------------------------------------------------------------------
    // Pieces the actor learner shares with Run()

    /// <summary>The run's checkpoint folder (latest.json, best.json, step_*.safetensors).</summary>
    public CheckpointStore Checkpoints => _store;

    /// <summary>Loads model and optimizer from the checkpoint <paramref name="tag"/> points at; returns its trainer state.</summary>
    public (JsonObject State, string File) RestoreCheckpoint(string tag)
    {
        var (tensors, state, entry) = _store.Load(tag);
        PolicyModel.Apply(Policy.Model, tensors, Base, PretrainedBase.Recorded(state), entry.File);
        var optTensors = tensors.Where(kv => kv.Key.StartsWith("optim.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key["optim.".Length..], kv => kv.Value);
        _optimizer.LoadStateDict(new OptimizerCheckpoint(optTensors, OptimizerScalars.FromJson(state["optimizer"]!.GetValue<string>(), entry.File)));
        foreach (var t in tensors.Values) t.Dispose();
        return (state, entry.File);
    }

    /// <summary>Writes a checkpoint of model and optimizer with the trainer state the resume path reads.</summary>
    public CheckpointStore.Entry SaveCheckpoint(long update, long samples, int epoch, int position, double bestValue, long bestStep,
        long sinceBest, double elapsed, JsonObject? extraState, params string[] tags) =>
        SaveCheckpoint(IsScst ? "scst" : "ce", update, samples, NewCursor(epoch, position),
            bestValue, bestStep, sinceBest, elapsed, tags, extraState);

    /// <summary>Loads the best validation checkpoint (if any) and evaluates val and test, as Run() ends; returns the best file.</summary>
    public string? FinalEvaluation(long update, Dictionary<string, IReadOnlyDictionary<string, double>> metrics)
    {
        string? bestFile = null;
        if (_store.Find("best") is { } best)
        {
            var (tensors, state, _) = _store.Load("best", ModelTensor);
            PolicyModel.Apply(Policy.Model, tensors, Base, PretrainedBase.Recorded(state), best.File);
            foreach (var t in tensors.Values) t.Dispose();
            bestFile = Path.Combine(_store.Directory, best.File);
        }
        metrics["val"] = EvaluateSplit(_corpus.Val, null);
        metrics["test"] = EvaluateSplit(_corpus.Test, null);
        _metrics.Log("test", update, metrics["test"]);
        return bestFile;
    }

    /// <summary>
    /// The policy's weights alone (no optimizer), as one safetensors file: what rollout replicas load — on a pretrained
    /// base only what trains, stamped with the base's identity. Returns its SHA-256.
    /// </summary>
    public string ExportPolicyWeights(string path)
    {
        using var scope = NewDisposeScope();
        var tensors = PolicyModel.Carried(Policy.Model, Base).ToDictionary(p => p.Name, p => p.Parameter.detach().cpu(), StringComparer.Ordinal);
        var meta = Base is null ? null : new Dictionary<string, string> { [PretrainedBase.MetadataKey] = Base.Identity };
        return Scst.Model.SafeTensors.SafeTensorsFile.Write(path, tensors, meta);
    }

    /// <summary>
    /// A copy of the policy's parameters on its device, for a replica in this process (no file, no chunks). The
    /// tensors belong to no dispose scope: whoever receives the snapshot owns them (<see cref="LoadPolicySnapshot"/> disposes them).
    /// </summary>
    public PolicySnapshot SnapshotPolicy()
    {
        using var _ = no_grad();
        var parameters = new List<(string, Tensor)>();
        foreach (var (name, p) in PolicyModel.Carried(Policy.Model, Base)) parameters.Add((name, p.detach().clone().DetachFromDisposeScope()));
        return new PolicySnapshot(parameters);
    }

    /// <summary>Loads a <see cref="PolicySnapshot"/> of the same architecture (every parameter, by name and shape), then disposes it.</summary>
    public void LoadPolicySnapshot(PolicySnapshot snapshot, string source)
    {
        using (snapshot)
            PolicyModel.Apply(Policy.Model, snapshot.Parameters.ToDictionary(p => p.Name, p => p.Tensor, StringComparer.Ordinal), Base, Base?.Identity, source);
    }

    /// <summary>Loads weights written by <see cref="ExportPolicyWeights"/>, refusing a file whose SHA-256 differs.</summary>
    public void LoadPolicyWeights(string path, string sha256)
    {
        var (tensors, _, meta) = CheckpointStore.LoadFileWithMetadata(path, sha256);
        try { PolicyModel.Apply(Policy.Model, tensors, Base, meta.GetValueOrDefault(PretrainedBase.MetadataKey), path); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>Settings recorded in summary.json.</summary>
    public Dictionary<string, object> SummarySettings() => Settings();

    // ----------------------------------------------------------------------------------------------------------
    // The loop

    public TrainSummary Run(CancellationToken cancellation = default)
    {
        var run = _config.Run;
        var mode = IsScst ? "scst" : "ce";
        var clock = Stopwatch.StartNew();
        long update = 0, samples = 0, bestStep = -1, sinceBest = 0;
        double bestValue = double.NegativeInfinity, elapsedBefore = 0;
        var cursor = NewCursor();
        if (_options.Resume && _store.Find("latest") is not null)
        {
            var (state, file) = RestoreCheckpoint("latest");
            if (state["mode"]?.GetValue<string>() is { } m && m != mode)
                throw new InvalidDataException($"{file}: the run directory holds a {m} run, but the config is {mode}; use another --run-dir");
            update = state["step"]!.GetValue<long>();
            samples = state["samples_consumed"]!.GetValue<long>();
            cursor = ResumeCursor(state, file);
            (bestValue, bestStep, sinceBest) = ReadBest(state, file);
            elapsedBefore = state["elapsed_s"]?.GetValue<double>() ?? 0;
            _log.LogInformation("Resumed {Mode} at update {Update} (epoch {Epoch}, position {Pos}) from {File}", mode, update, cursor.Epoch, cursor.Position, file);
        }
        else if (_store.Find("latest") is not null)
            throw new InvalidOperationException($"{_options.RunDir} already holds a run; pass --resume to continue it, or choose another --run-dir");

        double Elapsed() => elapsedBefore + clock.Elapsed.TotalSeconds;
        CheckpointStore.Entry Save(params string[] tags) => SaveCheckpoint(mode, update, samples, cursor, bestValue, bestStep, sinceBest, Elapsed(), tags);

        var stopped = false;
        var stopEarly = false;
        while (update < TotalUpdates && !stopEarly)
        {
            if (cancellation.IsCancellationRequested || (_options.StopAfterUpdates is int s && update >= s)) { stopped = true; break; }
            var samplesBefore = samples;
            var values = IsScst ? ScstUpdate(update, cursor, ref samples) : CeUpdate(update, cursor, ref samples);
            var (lr, norm) = ApplyUpdate(update, cursor.Epoch);
            update++;
            values["lr"] = lr;
            if (!double.IsNaN(norm)) values["grad_norm"] = norm;
            values["epoch"] = cursor.Epoch;
            _metrics.Log(mode, update, values);
            Telemetry.ScstMetrics.RecordUpdate(mode, samples - samplesBefore, update, values);
            Progress?.Invoke(new TrainingProgress(mode, update, TotalUpdates, values));

            if (update % run.EvalEvery == 0 || update == TotalUpdates)
            {
                var val = EvaluateSplit(_corpus.Val, run.EvalMaxImages);
                _metrics.Log("val", update, val);
                var value = val[run.BestMetric];
                if (value > bestValue)
                {
                    (bestValue, bestStep, sinceBest) = (value, update, 0);
                    Save("best");
                }
                else if (run.EarlyStopPatience > 0 && ++sinceBest >= run.EarlyStopPatience)
                {
                    _log.LogInformation("Validation {Metric} has not improved for {N} evaluations (best {Best:F4} at update {Step}); stopping", run.BestMetric, sinceBest, bestValue, bestStep);
                    stopEarly = true;
                }
                _log.LogInformation("update {Update}: val {Metric} {Value:F4} (best {Best:F4} at {BestStep}), CIDEr-D {Cider:F4}", update, run.BestMetric, value, bestValue, bestStep, val["CIDEr"]);
            }
            if (update % run.CheckpointEvery == 0) Save("latest");
        }

        var last = Save("latest");
        var metrics = new Dictionary<string, IReadOnlyDictionary<string, double>>();
        string? bestFile = null;
        if (!stopped)
        {
            // Report the checkpoint chosen on validation, as papers do; the final weights stay in 'latest'.
            bestFile = FinalEvaluation(update, metrics);
        }
        var summary = new TrainSummary(mode, update, samples, Elapsed(), last.Sha256, Path.Combine(_store.Directory, last.File), bestFile,
            bestStep >= 0 ? bestStep : null, !stopped, metrics, Settings());
        WriteSummary(summary);
        return summary;
    }

    private Dictionary<string, double> CeUpdate(long update, DataCursor cursor, ref long samples)
    {
        double loss = 0;
        var micro = _plan.MicroBatches(update);
        for (var m = 0; m < micro; m++)
        {
            var batch = cursor.Next(_config.Run.BatchSizeTrain);
            loss += CeStep(batch, cursor.Epoch) / micro;
            samples += batch.Length;
        }
        return new Dictionary<string, double> { ["loss"] = loss };
    }

    private Dictionary<string, double> ScstUpdate(long update, DataCursor cursor, ref long samples)
    {
        var acc = new Dictionary<string, double>();
        var micro = _plan.MicroBatches(update);
        void Add(string k, double v) => acc[k] = acc.GetValueOrDefault(k) + v / micro;
        for (var m = 0; m < micro; m++)
        {
            var batch = cursor.Next(_config.Run.BatchSizeTrain);
            samples += batch.Length;
            var seed = SamplingSeed(_config.Run.Seed, update, m);
            var rollout = Rollout(batch, update, seed);
            var (rewards, adv, greedy) = ScoreRollout(rollout);
            var (loss, _) = ScstStep(rollout, adv);
            foreach (var (k, v) in RolloutStats(rollout, rewards, adv, greedy)) Add(k, v);
            Add("loss", loss);
        }
        return acc;
    }

    /// <summary>Each update samples from its own seed, so a resumed run draws exactly what an uninterrupted one would.</summary>
    public static ulong SamplingSeed(int runSeed, long update, int micro) =>
        (ulong)runSeed * 1_000_003UL + (ulong)update * 7919UL + (ulong)micro;

    public static Dictionary<string, double> RolloutStats(RolloutBatch r, double[] rewards, double[] adv, double[]? greedy)
    {
        var baseline = rewards.Zip(adv, (x, a) => x - a).ToArray();
        var mean = adv.Average();
        var tokens = r.Lengths.Sum();
        var stats = new Dictionary<string, double>
        {
            ["reward_mean"] = rewards.Average(),
            ["reward_max"] = rewards.Max(),
            ["baseline_mean"] = baseline.Average(),
            ["advantage_std"] = Math.Sqrt(adv.Sum(a => (a - mean) * (a - mean)) / adv.Length),
            // Monte-Carlo estimate of the per-token entropy of the behaviour policy (exact for sampling at T = 1).
            ["entropy"] = tokens > 0 ? -r.BehaviourLogProbs.Sum() / tokens : 0,
            ["caption_length"] = r.Lengths.Average(),
            ["distinct_captions"] = r.Captions.Distinct().Count() / (double)r.Captions.Length,
        };
        if (greedy is not null) stats["greedy_reward_mean"] = greedy.Average();
        return stats;
    }

    public Dictionary<string, double> EvaluateSplit(CaptionSplit split, int? maxImages)
    {
        var run = _config.Run;
        var r = SplitEvaluator.Evaluate(Policy, split, run, maxImages,
            (done, total) => Progress?.Invoke(new TrainingProgress($"eval:{split.Name}", done, total, new Dictionary<string, double>())));
        // LAVIS's captioning task reports agg_metrics = CIDEr + Bleu_4 beside coco-caption's metrics.
        return new Dictionary<string, double>(r.Metrics) { ["agg_metrics"] = r.Metrics["CIDEr"] + r.Metrics["Bleu_4"] };
    }

    /// <summary>A data cursor over <see cref="TrainSamples"/> in this run's order (LAVIS's runners drop a partial last batch).</summary>
    public DataCursor NewCursor(int epoch = 0, int position = 0) => new(TrainSamples, _config.Run.Seed, epoch, position, _plan.DropLast);

    // What the cursor position counts; a checkpoint's position means nothing under another unit or drop rule.
    private string SampleUnit => CeByCaption ? "caption" : "image";

    /// <summary>The cursor a checkpoint's trainer state stands at, refusing one written with another sample unit or batch rule.</summary>
    public DataCursor ResumeCursor(JsonObject state, string file)
    {
        var unit = state["sample_unit"]?.GetValue<string>() ?? "image";
        if (unit != SampleUnit)
            throw new InvalidDataException($"{file}: the run's data cursor counts {unit}s, but run.ce_sample_unit makes it count {SampleUnit}s; set ce_sample_unit: {unit} to resume, or use another --run-dir");
        var runner = state["runner"]?.GetValue<string>();
        if (runner != _config.Run.Runner)
            throw new InvalidDataException($"{file}: the run was trained with run.runner {runner ?? "(absent)"}, the config says {_config.Run.Runner ?? "(absent)"}; set it back to resume, or use another --run-dir");
        return NewCursor(state["epoch"]!.GetValue<int>(), state["position"]!.GetValue<int>());
    }

    /// <summary>Best validation value, its update and evaluations since, refusing a checkpoint that ranked by another metric.</summary>
    public (double Best, long Step, long SinceBest) ReadBest(JsonObject state, string file)
    {
        var metric = state["best_metric"]?.GetValue<string>() ?? "CIDEr"; // written before run.best_metric existed: CIDEr-D
        if (metric != _config.Run.BestMetric)
            throw new InvalidDataException($"{file}: the run picked its best checkpoint by {metric}, but run.best_metric is {_config.Run.BestMetric}; set best_metric: {metric} to resume, or use another --run-dir");
        var best = (state["best_val_metric"] ?? state["best_val_cider"])?.GetValue<double>() ?? double.NegativeInfinity;
        return (best, state["best_step"]?.GetValue<long>() ?? -1, state["evals_since_best"]?.GetValue<long>() ?? 0);
    }

    private CheckpointStore.Entry SaveCheckpoint(string mode, long update, long samples, DataCursor cursor, double bestValue, long bestStep,
        long sinceBest, double elapsed, string[] tags, JsonObject? extraState = null)
    {
        using var scope = NewDisposeScope();
        var tensors = PolicyModel.Carried(Policy.Model, Base).ToDictionary(p => p.Name, p => p.Parameter.detach().cpu(), StringComparer.Ordinal);
        var opt = _optimizer.StateDict(copy: false);
        foreach (var (key, t) in opt.Tensors) tensors["optim." + key] = t;
        var state = new JsonObject
        {
            ["mode"] = mode,
            ["step"] = update,
            ["samples_consumed"] = samples,
            ["epoch"] = cursor.Epoch,
            ["position"] = cursor.Position,
            ["best_metric"] = _config.Run.BestMetric,
            ["best_val_metric"] = double.IsFinite(bestValue) ? bestValue : null,
            ["best_step"] = bestStep,
            ["sample_unit"] = SampleUnit,
            ["runner"] = _config.Run.Runner,
            ["evals_since_best"] = sinceBest,
            ["elapsed_s"] = elapsed,
            ["optimizer"] = opt.Scalars.ToJson(),
            ["seed"] = _config.Run.Seed,
            ["base"] = Base?.ToJson(),
        };
        if (extraState is not null)
            foreach (var (k, v) in extraState) state[k] = v?.DeepClone();
        var name = tags.Contains("best") && tags.Length == 1 ? "best" : $"step_{update:D7}";
        var entry = _store.Save(name, tensors, state, tags);
        PruneOldCheckpoints();
        return entry;
    }

    // Keep the files a pointer names; older step files only cost disk.
    private void PruneOldCheckpoints()
    {
        var keep = new[] { "latest", "best" }.Select(_store.Find).Where(e => e is not null).Select(e => e!.File).ToHashSet();
        foreach (var f in Directory.EnumerateFiles(_store.Directory, "step_*.safetensors"))
            if (!keep.Contains(Path.GetFileName(f)))
            {
                File.Delete(f);
                File.Delete(f + ".sha256");
            }
    }

    private Dictionary<string, object> Settings()
    {
        var s = _config.Scst;
        var d = new Dictionary<string, object>
        {
            ["seed"] = _config.Run.Seed,
            ["device"] = Policy.Device.ToString(),
            ["vocab_size"] = Policy.Tokenizer.VocabSize,
            ["parameters"] = Policy.Model.parameters().Sum(p => p.numel()),
            ["train_images"] = _corpus.Train.Count,
            ["eval_decoding"] = _config.Run.NumBeams > 1 ? $"beam{_config.Run.NumBeams}" : "greedy",
            ["best_metric"] = _config.Run.BestMetric,
            ["runner"] = _config.Run.Runner ?? "none",
            ["sample_unit"] = SampleUnit,
            ["train_samples"] = TrainSamples,
            ["updates_per_epoch"] = UpdatesPerEpoch,
            ["beta2"] = _config.Run.Beta2,
            ["lr_layer_decay"] = _config.Run.LrLayerDecay,
        };
        if (IsScst)
        {
            d["sampling"] = s.Sampling;
            d["k"] = s.Sampling == "beam" ? s.BeamSize : s.SampleN;
            d["baseline"] = s.Baseline;
            d["loss_normalization"] = s.LossNormalization;
            d["reward"] = "cider_d";
            d["reward_df"] = "train";
            d["reward_counts_eos"] = s.Reward.EosToken;
            d["mode"] = s.Mode;
        }
        return d;
    }

    public void WriteSummary(TrainSummary s, JsonObject? extra = null)
    {
        var json = new JsonObject
        {
            ["mode"] = s.Mode,
            ["updates"] = s.Updates,
            ["samples_consumed"] = s.SamplesConsumed,
            ["elapsed_s"] = Math.Round(s.ElapsedS, 3),
            ["completed"] = s.Completed,
            ["final_checkpoint"] = s.FinalCheckpoint,
            ["final_checkpoint_sha256"] = s.FinalCheckpointSha256,
            ["best_checkpoint"] = s.BestCheckpoint,
            ["best_step"] = s.BestStep,
            ["metrics"] = new JsonObject(s.Metrics.Select(kv => KeyValuePair.Create<string, JsonNode?>(kv.Key,
                new JsonObject(kv.Value.Select(m => KeyValuePair.Create<string, JsonNode?>(m.Key, m.Value)))))),
            ["settings"] = JsonSerializer.SerializeToNode(s.Settings),
            ["parameters"] = Parameters.ToJson(),
        };
        if (extra is not null)
            foreach (var (k, v) in extra) json[k] = v?.DeepClone();
        var path = Path.Combine(_options.RunDir, "summary.json");
        Scst.Model.SafeTensors.SafeTensorsFile.WriteAtomically(path, System.Text.Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
    }

    public void Dispose()
    {
        Policy.Dispose();
        _sampling.Dispose();
    }
}
