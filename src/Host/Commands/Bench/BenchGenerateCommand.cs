using System.CommandLine;
using System.Diagnostics;
using Scst.Model.Generation;
using Scst.Model.T5;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Host.Commands.Bench;

/// <summary>
/// <c>bench generate</c>: beam-search throughput of a random-init T5 from input embeddings (as BLIP-2 feeds it).
/// Every beam runs the full --new-tokens (min_new_tokens = max_new_tokens) so runs do the same work.
/// </summary>
public static class BenchGenerateCommand
{
    public static Command Create()
    {
        var o = new BenchModelOptions();
        var cmd = new Command("generate", "Beam-search throughput (images/s, beam-tokens/s) of a random-init T5 of a given size");
        o.AddTo(cmd);
        cmd.SetAction(p => ModelCommand.Guarded(() =>
        {
            var (model, device, dtype) = o.RandomModel(p);
            using var _ = model;
            model.eval();
            int b = p.GetValue(o.Batch), k = p.GetValue(o.Beams), s = p.GetValue(o.InputLen), n = p.GetValue(o.NewTokens);
            var options = new GenerationOptions { NumBeams = k, NumReturnSequences = k, MaxNewTokens = n, MinNewTokens = n, CheckFinishedEvery = 0 };
            var times = new List<double>();
            for (var i = 0; i < p.GetValue(o.Warmup) + p.GetValue(o.Iters); i++)
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var embeds = randn(b, s, model.Config.DModel, dtype: dtype, device: device);
                var mask = ones(b, s, dtype: ScalarType.Int64, device: device);
                BenchModelOptions.Synchronize(device);
                var sw = Stopwatch.StartNew();
                var enc = model.Encode(null, embeds, mask);
                using var result = k > 1 ? Seq2SeqGeneration.Generate(model, enc, mask, options)
                                         : Seq2SeqGeneration.Generate(model, enc, mask, options with { NumBeams = 1, NumReturnSequences = 1 });
                BenchModelOptions.Synchronize(device);
                sw.Stop();
                if (i >= p.GetValue(o.Warmup)) times.Add(sw.Elapsed.TotalMilliseconds);
            }
            var ms = times.Average();
            var figures = o.Describe(p, model, device, dtype);
            figures["bench"] = "generate";
            figures["ms_per_batch"] = Math.Round(ms, 2);
            figures["ms_per_batch_min"] = Math.Round(times.Min(), 2);
            figures["images_per_s"] = Math.Round(b / (ms / 1000), 3);
            figures["beam_tokens_per_s"] = Math.Round((double)b * k * n / (ms / 1000), 1);
            o.Report(p, figures);
            return 0;
        }));
        return cmd;
    }
}
