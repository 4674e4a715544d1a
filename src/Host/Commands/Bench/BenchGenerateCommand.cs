using System.CommandLine;
using Scst.Model.Generation;
using static TorchSharp.torch;

namespace Scst.Host.Commands.Bench;

/// <summary>
/// <c>bench generate</c>: beam-search throughput of a random-init T5 from input embeddings (as BLIP-2 feeds it).
/// Every beam runs the full --new-tokens (min_new_tokens = max_new_tokens) so runs do the same work.
/// </summary>
public static class BenchGenerateCommand
{
    public static Command Create() => BenchModelOptions.CreateCommand("generate",
        "Beam-search throughput (images/s, beam-tokens/s) of a random-init T5 of a given size", run =>
    {
        var model = run.Model;
        model.eval();
        int b = run.Batch, k = run.Beams, n = run.NewTokens;
        var options = new GenerationOptions { NumBeams = k, NumReturnSequences = k, MaxNewTokens = n, MinNewTokens = n, CheckFinishedEvery = 0 };
        using var noGrad = no_grad();
        var times = run.TimeSteps(() =>
        {
            var (embeds, mask) = run.EncoderInputs();
            return () =>
            {
                var enc = model.Encode(null, embeds, mask);
                return k > 1 ? Seq2SeqGeneration.Generate(model, enc, mask, options)
                             : Seq2SeqGeneration.Generate(model, enc, mask, options with { NumBeams = 1, NumReturnSequences = 1 });
            };
        });
        var ms = times.Average();
        run.Figures["ms_per_batch"] = Math.Round(ms, 2);
        run.Figures["ms_per_batch_min"] = Math.Round(times.Min(), 2);
        run.Figures["images_per_s"] = Math.Round(b / (ms / 1000), 3);
        run.Figures["beam_tokens_per_s"] = Math.Round((double)b * k * n / (ms / 1000), 1);
    });
}
