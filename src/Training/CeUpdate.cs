using Scst.Model;
using Scst.Training.Configuration;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>
/// One cross-entropy update, as LAVIS's captioning task trains BLIP-2: for each of the update's micro-batches the
/// teacher-forced token cross-entropy of reference captions given the images (train transform), divided by
/// <c>accum_grad_iters</c> and backpropagated; then one optimizer step. With <c>run.ce_sample_unit: caption</c> the data
/// cursor walks every (image, caption) annotation once per epoch, as LAVIS's caption datasets do; with <c>image</c> it
/// walks images and each visit picks one of the image's captions.
/// </summary>
public sealed class CeUpdate
{
    private readonly ScstConfig _config;
    private readonly Policy _policy;
    private readonly CaptionSplit _train;
    // By caption: cursor sample s is (image, caption index) in the order of the training references.
    private readonly (int Image, int Caption)[]? _annotations;

    public CeUpdate(ScstConfig config, Policy policy, CaptionSplit train)
    {
        (_config, _policy, _train) = (config, policy, train);
        if (config.Run.CeSampleUnit == CeSampleUnit.Caption)
            _annotations = [.. train.References.SelectMany((refs, i) => refs.Select((_, c) => (i, c)))];
    }

    /// <summary>True when a CE epoch visits every (image, caption) annotation once.</summary>
    public bool ByCaption => _annotations is not null;
    /// <summary>What the data cursor walks: annotations with <see cref="ByCaption"/>, training images otherwise.</summary>
    public int TrainSamples => _annotations?.Length ?? _train.Count;

    /// <summary>All micro-batches of update <paramref name="update"/> from the cursor, then the optimizer step.</summary>
    public Dictionary<string, double> Run(long update, DataCursor cursor, Optimization optimization, ref long samples)
    {
        double loss = 0;
        var micro = optimization.Plan.MicroBatches(update);
        var poison = FaultInjection.NonfiniteLossAt(update + 1);
        for (var m = 0; m < micro; m++)
        {
            var batch = cursor.Next(_config.Run.BatchSizeTrain);
            loss += Step(batch, cursor.Epoch, poison) / micro;
            samples += batch.Length;
        }
        var (lr, norm) = optimization.Step(update, cursor.Epoch, double.IsFinite(loss) ? null : "loss");
        var values = new Dictionary<string, double> { ["loss"] = loss, ["lr"] = lr };
        if (!double.IsNaN(norm)) values["grad_norm"] = norm;
        return values;
    }

    /// <summary>
    /// One micro-batch of data epoch <paramref name="epoch"/>: loss / accum_grad_iters backpropagated; returns the loss.
    /// <paramref name="injectNonfinite"/>: the loss is made NaN before backward (<see cref="FaultInjection"/>).
    /// </summary>
    public double Step(int[] batch, int epoch, bool injectNonfinite = false)
    {
        using var scope = NewDisposeScope();
        _policy.Model.train();
        var (images, captions) = Samples(batch, epoch);
        // CE sees the train transform (random crop/flip/RandomAugment by default), drawn per (seed, epoch, sample): by
        // caption every annotation gets its own draw, as each LAVIS __getitem__ does.
        var pixels = _train.TrainPixels(images, epoch, _policy.Device, ByCaption ? batch.Select(i => (long)i).ToArray() : null);
        var loss = _policy.CrossEntropy(pixels, captions, _config.Run.LabelSmoothing);
        if (injectNonfinite) loss = loss.mul(Scalars.Of(double.NaN));
        loss.div(Scalars.Of((long)_config.Run.AccumGradIters)).backward();
        return loss.item<float>();
    }

    /// <summary>The images and captions of cursor samples: an annotation each, or per image one caption picked by <see cref="PickCaption"/>.</summary>
    public (int[] Images, List<string> Captions) Samples(int[] batch, int epoch)
    {
        if (_annotations is null) return (batch, batch.Select(i => PickCaption(i, epoch)).ToList());
        var refs = _train.References;
        return ([.. batch.Select(s => _annotations[s].Image)], [.. batch.Select(s => refs[_annotations[s].Image][_annotations[s].Caption])]);
    }

    // ce_sample_unit image: each visit of an image picks one caption, rotating with the epoch.
    private string PickCaption(int image, int epoch)
    {
        var refs = _train.References[image];
        var h = (ulong)image * 0x9E3779B97F4A7C15UL ^ (ulong)epoch * 0xC2B2AE3D27D4EB4FUL;
        return refs[(int)((h >> 17) % (ulong)refs.Count)];
    }
}
