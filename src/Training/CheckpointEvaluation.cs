using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;
using Scst.Model.Tokenization;
using TorchSharp;

namespace Scst.Training;

/// <summary>Scores a trained checkpoint on one split of the configured data (the <c>eval</c> command).</summary>
public static class CheckpointEvaluation
{
    public static SplitEvaluator.Result Run(ScstConfig config, string checkpoint, string split, ILogger log, Action<int, int>? progress = null)
    {
        var device = RunSetup.InitializeRuntime(config.Run);
        var corpus = CaptionCorpus.Load(config, log);
        var data = split switch
        {
            "train" => corpus.Train,
            "val" => corpus.Val,
            "test" => corpus.Test,
            _ => throw new ArgumentException($"--split must be train, val or test, got '{split}'"),
        };
        ICaptionTokenizer tokenizer = config.Model.Tokenizer.Type == "sentencepiece"
            ? SentencePieceTokenizer.Load(config.Model.Tokenizer.Path!)
            : WordTokenizer.Load(TokenizerBeside(checkpoint));
        var (model, pretrained) = PolicyModel.Build(config.Model, tokenizer.VocabSize, corpus.ImageSize, config.Run.Seed, device, log);
        PolicyWeights.LoadFromCheckpoint(model, checkpoint, pretrained);
        model.to(device);
        using var policy = new Policy(model, tokenizer, config.Model.Prompt, config.Model.MaxTxtLen, device, PolicyModel.AmpDType(config.Run, device, log));
        log.LogInformation("Evaluating {Checkpoint} on {Split} ({Count} images)", checkpoint, split, data.Count);
        return SplitEvaluator.Evaluate(policy, data, config.Run, progress: progress);
    }

    private static string TokenizerBeside(string checkpoint)
    {
        var path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpoint))!, "tokenizer.json");
        if (!File.Exists(path))
            throw new FileNotFoundException($"no tokenizer.json beside checkpoint '{checkpoint}' (the word vocabulary the model was trained with)", path);
        return path;
    }
}
