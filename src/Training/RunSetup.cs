using Microsoft.Extensions.Logging;
using Scst.Model;
using Scst.Model.Tokenization;
using Scst.Reward;
using Scst.Training.Configuration;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>
/// What every process of a run builds first, and the same way: the Torch runtime and device, the corpus, the tokenizer,
/// the model (from scratch, or on a pretrained folder, plus <c>model.finetuned</c>) wrapped as a <see cref="Policy"/>.
/// The plain trainer, the actor learner, rollout workers and the benches all start here. What only learning needs
/// (optimizer, schedule, the reward's document frequencies) is made on request, so a rollout worker never holds it.
/// </summary>
public sealed class RunSetup : IDisposable
{
    public required ScstConfig Config { get; init; }
    public required Device Device { get; init; }
    public required CaptionCorpus Corpus { get; init; }
    public required Policy Policy { get; init; }
    /// <summary>The pretrained folder the model sits on (null for a model built from scratch).</summary>
    public required PretrainedBase? Base { get; init; }
    public required ParameterReport Parameters { get; init; }

    /// <summary><c>run.libtorch_dir</c>, <c>run.threads</c>, <c>run.device</c>: the runtime every Torch computation of the process uses.</summary>
    public static Device InitializeRuntime(RunOptions run)
    {
        TorchRuntime.Initialize(run.LibTorchDir);
        if (run.Threads > 0) set_num_threads(run.Threads);
        return TorchRuntime.ResolveDevice(run.Device);
    }

    /// <param name="checkpointDir">Where the run keeps its word vocabulary (<c>tokenizer.json</c>) beside its checkpoints.</param>
    public static RunSetup Load(ScstConfig config, string checkpointDir, ILogger log)
    {
        var run = config.Run;
        var device = InitializeRuntime(run);
        var corpus = CaptionCorpus.Load(config, log);
        log.LogInformation("Data: {Train} train, {Val} val, {Test} test images", corpus.Train.Count, corpus.Val.Count, corpus.Test.Count);

        var tokenizer = LoadOrBuildTokenizer(config, checkpointDir, corpus);
        var (model, pretrained) = PolicyModel.Build(config.Model, tokenizer.VocabSize, corpus.ImageSize, run.Seed, device, log);
        if (config.Model.LoadFinetuned) PolicyWeights.LoadFromCheckpoint(model, config.Model.Finetuned!, pretrained);
        model.to(device);
        var report = PolicyModel.Report(model);
        log.LogInformation("Model: {Report}", report);
        var policy = new Policy(model, tokenizer, config.Model.Prompt, config.Model.MaxTxtLen, device, PolicyModel.AmpDType(run, device, log));
        return new RunSetup { Config = config, Device = device, Corpus = corpus, Policy = policy, Base = pretrained, Parameters = report };
    }

    /// <summary>The optimizer (LAVIS's AdamW groups) and LR schedule over <paramref name="trainSamples"/> cursor samples.</summary>
    public Optimization CreateOptimization(int trainSamples, ILogger log) => new(Config.Run, Policy.Model, trainSamples, log);

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

    private static ICaptionTokenizer LoadOrBuildTokenizer(ScstConfig config, string checkpointDir, CaptionCorpus corpus)
    {
        var t = config.Model.Tokenizer;
        if (t.Type == "sentencepiece") return SentencePieceTokenizer.Load(t.Path!);
        if (t.Path is not null && File.Exists(t.Path)) return WordTokenizer.Load(t.Path);
        var own = Path.Combine(checkpointDir, "tokenizer.json");
        if (File.Exists(own)) return WordTokenizer.Load(own);
        // SCST must keep the CE model's vocabulary: take the tokenizer saved beside the fine-tuned checkpoint.
        if (config.Model.LoadFinetuned)
        {
            var beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(config.Model.Finetuned!))!, "tokenizer.json");
            if (!File.Exists(beside))
                throw new FileNotFoundException($"model.finetuned: no tokenizer.json beside '{config.Model.Finetuned}'; the word vocabulary must be the CE run's", beside);
            var tok = WordTokenizer.Load(beside);
            Directory.CreateDirectory(checkpointDir);
            tok.Save(own);
            return tok;
        }
        var built = WordTokenizer.Build(corpus.Train.References.SelectMany(r => r), t.MinFreq);
        Directory.CreateDirectory(checkpointDir);
        built.Save(t.Path ?? own);
        if (t.Path is not null) built.Save(own);
        return built;
    }

    public void Dispose() => Policy.Dispose();
}
