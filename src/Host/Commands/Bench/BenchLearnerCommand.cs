using System.CommandLine;
using Scst.Model.Generation;
using Scst.Training;
using Scst.Training.Configuration;
using static TorchSharp.torch;

namespace Scst.Host.Commands.Bench;

/// <summary>
/// <c>bench learner</c>: one SCST learner step on a random-init T5 — teacher-forced log-probs of batch × beams
/// sequences (encoder on input embeddings that carry gradients, as BLIP-2's projected queries do), the SCST loss
/// (<see cref="ScstLoss"/>, token_mean), backward and an AdamW step.
/// </summary>
public static class BenchLearnerCommand
{
    public static Command Create() => BenchModelOptions.CreateCommand("learner",
        "SCST learner step time (teacher-forced forward + backward + AdamW) of a random-init T5", run =>
    {
        var (model, device) = (run.Model, run.Device);
        model.train();
        int b = run.Batch, k = run.Beams, n = run.NewTokens, v = model.Config.VocabSize;
        // The project's AdamW (the trainers' optimizer): TorchSharp's step makes temporary Scalars (src/Model/Scalars.cs).
        var opt = new Scst.Model.Optim.AdamW([new Scst.Model.Optim.ParameterGroup("all", [.. model.named_parameters().Select(p => (p.name, p.parameter))], 0.0)], 1e-5);
        var times = run.TimeSteps(() =>
        {
            var (embeds, mask) = run.EncoderInputs();
            embeds.requires_grad_(true);
            var seqs = cat([zeros(b * k, 1, dtype: ScalarType.Int64, device: device),
                            randint(2, v, [b * k, n], dtype: ScalarType.Int64, device: device)], 1);
            var advantage = randn(b * k, device: device);
            return () =>
            {
                opt.ZeroGrad();
                var enc = model.Encode(null, embeds, mask);
                var (lp, valid) = Seq2SeqGeneration.SequenceLogProbs(model, enc, mask, seqs);
                ScstLoss.Compute(lp, valid, advantage, LossNormalization.TokenMean).backward();
                opt.Step();
                return null;
            };
        });
        var ms = times.Average();
        run.Figures["sequences_per_step"] = b * k;
        run.Figures["ms_per_step"] = Math.Round(ms, 2);
        run.Figures["ms_per_step_min"] = Math.Round(times.Min(), 2);
        run.Figures["images_per_s"] = Math.Round(b / (ms / 1000), 3);
    });
}
