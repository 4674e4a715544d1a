using System.CommandLine;
using System.Diagnostics;
using Scst.Model.Generation;
using Scst.Model.T5;
using Scst.Training;
using Scst.Training.Configuration;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Host.Commands.Bench;

/// <summary>
/// <c>bench learner</c>: one SCST learner step on a random-init T5 — teacher-forced log-probs of batch × beams
/// sequences (encoder on input embeddings that carry gradients, as BLIP-2's projected queries do), the SCST loss
/// (<see cref="ScstLoss"/>, token_mean), backward and an AdamW step.
/// </summary>
public static class BenchLearnerCommand
{
    public static Command Create()
    {
        var o = new BenchModelOptions();
        var cmd = new Command("learner", "SCST learner step time (teacher-forced forward + backward + AdamW) of a random-init T5");
        o.AddTo(cmd);
        cmd.SetAction(p => ModelCommand.Guarded(() =>
        {
            var (model, device, dtype) = o.RandomModel(p);
            using var _ = model;
            model.train();
            int b = p.GetValue(o.Batch), k = p.GetValue(o.Beams), s = p.GetValue(o.InputLen), n = p.GetValue(o.NewTokens);
            var v = model.Config.VocabSize;
            var opt = optim.AdamW(model.parameters(), 1e-5);
            var times = new List<double>();
            for (var i = 0; i < p.GetValue(o.Warmup) + p.GetValue(o.Iters); i++)
            {
                using var scope = NewDisposeScope();
                var embeds = randn(b, s, model.Config.DModel, dtype: dtype, device: device).requires_grad_(true);
                var mask = ones(b, s, dtype: ScalarType.Int64, device: device);
                var seqs = cat([zeros(b * k, 1, dtype: ScalarType.Int64, device: device),
                                randint(2, v, [b * k, n], dtype: ScalarType.Int64, device: device)], 1);
                var advantage = randn(b * k, device: device);
                BenchModelOptions.Synchronize(device);
                var sw = Stopwatch.StartNew();
                opt.zero_grad();
                var enc = model.Encode(null, embeds, mask);
                var (lp, valid) = Seq2SeqGeneration.SequenceLogProbs(model, enc, mask, seqs);
                var loss = ScstLoss.Compute(lp, valid, advantage, LossNormalization.TokenMean);
                loss.backward();
                opt.step();
                BenchModelOptions.Synchronize(device);
                sw.Stop();
                if (i >= p.GetValue(o.Warmup)) times.Add(sw.Elapsed.TotalMilliseconds);
            }
            var ms = times.Average();
            var figures = o.Describe(p, model, device, dtype);
            figures["bench"] = "learner";
            figures["sequences_per_step"] = b * k;
            figures["ms_per_step"] = Math.Round(ms, 2);
            figures["ms_per_step_min"] = Math.Round(times.Min(), 2);
            figures["images_per_s"] = Math.Round(b / (ms / 1000), 3);
            o.Report(p, figures);
            return 0;
        }));
        return cmd;
    }
}
