using Scst.Model.Data.Transforms;
using Scst.Reward;

namespace Scst.Training.Configuration;

// The typed, immutable form of a YAML config (LAVIS's schema: model, datasets, run; plus our scst section).
// Host reads and validates YAML into these records; the trainer and actors only ever see these.

/// <summary>The whole resolved configuration of a run.</summary>
public sealed record ScstConfig(
    ModelOptions Model,
    IReadOnlyDictionary<string, DatasetOptions> Datasets,
    RunOptions Run,
    ScstOptions Scst,
    string? SourceFile)
{
    /// <summary>True when the run fine-tunes with SCST (the scst section is enabled), false for CE pre-training.</summary>
    public bool IsScst => Scst.Enabled;
}

public sealed record ModelOptions(
    string Arch,
    string ModelType,
    bool LoadPretrained,
    string? Pretrained,
    bool LoadFinetuned,
    string? Finetuned,
    bool FreezeVit,
    string Prompt,
    int MaxTxtLen,
    string FeedForwardActivation,
    TokenizerOptions Tokenizer,
    TinyArchitecture? Architecture,
    string VitPrecision = "fp32",
    // LAVIS's name of the T5 inside model.pretrained; checked against the folder's text_config when it is opened.
    string? T5Model = null,
    // LAVIS's num_query_token; checked against the pretrained folder's num_query_tokens when it is opened.
    int? NumQueryToken = null,
    // LAVIS's model.image_size (the ViT's input size); equal to the datasets' image size (checked by the loader).
    int? ImageSize = null,
    // LAVIS's vit_model (eva_clip_g); checked against the pretrained folder's vision_config when it is opened.
    string? VitModel = null,
    // LAVIS's use_grad_checkpoint: activation checkpointing of each ViT layer, Q-Former layer and T5 block while training.
    bool UseGradCheckpoint = false);

public sealed record TokenizerOptions(string Type, string? Path, int MinFreq);

/// <summary>Sizes of a BLIP2-T5 built from scratch (the built-in demo); ignored when a pretrained checkpoint is loaded.</summary>
public sealed record TinyArchitecture(
    int ImageSize, int PatchSize, int VisionHidden, int VisionLayers, int VisionHeads, int VisionMlp,
    int NumQueryTokens, int QformerHidden, int QformerLayers, int QformerHeads, int QformerIntermediate, int CrossAttentionFrequency,
    int DModel, int DKv, int DFf, int NumHeads, int EncoderLayers, int DecoderLayers,
    int RelativeAttentionNumBuckets, int RelativeAttentionMaxDistance, double DropoutRate);

public sealed record DatasetOptions(
    string Name,
    string Format,
    string? Annotations,
    string? Images,
    int ImageSize,
    string? TrainPrompt,
    int MaxWords,
    string MissingImages,
    ShapesOptions? Shapes,
    VisProcessorOptions? TrainVisProcessor = null,
    VisProcessorOptions? EvalVisProcessor = null);

/// <summary>The built-in synthetic dataset; generated into <see cref="DatasetOptions.Images"/>'s folder when absent.</summary>
public sealed record ShapesOptions(int Seed, int Train, int Val, int Test);

public sealed record RunOptions(
    string Task,
    string LrSched,
    double InitLr,
    double MinLr,
    double WarmupLr,
    int WarmupSteps,
    double WeightDecay,
    double LrDecayRate,
    int? MaxEpoch,
    int? MaxIters,
    int? ItersPerInnerEpoch,
    int BatchSizeTrain,
    int BatchSizeEval,
    int AccumGradIters,
    double MaxGradNorm,
    int NumBeams,
    int MaxLen,
    int MinLen,
    int Seed,
    string OutputDir,
    bool Amp,
    string AmpDType,
    IReadOnlyList<string> TrainSplits,
    IReadOnlyList<string> ValidSplits,
    IReadOnlyList<string> TestSplits,
    string Device,
    int WorldSize,
    bool Distributed,
    int EvalEvery,
    int? EvalMaxImages,
    int CheckpointEvery,
    int EarlyStopPatience,
    double LabelSmoothing,
    string? ResumeCkptPath,
    string? LibTorchDir,
    int Threads,
    double RepetitionPenalty = 1.0,
    double LengthPenalty = 1.0,
    bool UseNucleusSampling = false,
    double TopP = 0.9,
    double Temperature = 1.0,
    // LAVIS's num_workers: threads decoding images (null: one per core; 0: on the calling thread, as LAVIS's main process).
    int? NumWorkers = null,
    // LAVIS's runner (runner_base: epochs, runner_iter: iterations); null = this project's update-counted loop.
    string? Runner = null,
    // What a CE epoch visits: "caption" (every (image, caption) annotation once, as LAVIS) or "image".
    CeSampleUnit CeSampleUnit = CeSampleUnit.Caption,
    // The validation metric that picks the best checkpoint and drives early stopping (an evaluator name or agg_metrics).
    string BestMetric = "CIDEr",
    double Beta2 = 0.999,
    double LrLayerDecay = 1.0,
    // Updates between the drivers' one-line progress logs (UpdateLog); 0 = never. metrics.jsonl still gets every update.
    int LogFreq = UpdateLog.DefaultEvery,
    // Updates in a row with a non-finite loss, reward or gradient norm (each skipped) before the run stops (NonfiniteGuard).
    int MaxNonfinite = 5);

public sealed record ScstOptions(
    bool Enabled,
    BaselineKind Baseline,
    RolloutSampling Sampling,
    int BeamSize,
    int SampleN,
    double Temperature,
    int TopK,
    double TopP,
    LossNormalization LossNormalization,
    RewardOptions Reward,
    ScstMode Mode,
    int MaxStaleness,
    double IsClip)
{
    /// <summary>Captions per image: beams or samples.</summary>
    public int K => Sampling == RolloutSampling.Beam ? BeamSize : SampleN;
}

public sealed record RewardOptions(string Metric, double Sigma, int N, string Df, string? DfFile, bool EosToken);
