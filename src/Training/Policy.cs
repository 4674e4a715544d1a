using Scst.Model;
using Scst.Training.Configuration;
using Scst.Model.Blip2;
using Scst.Model.Checkpoints;
using Scst.Model.Generation;
using Scst.Model.Precision;
using Scst.Model.T5;
using Scst.Model.Tokenization;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>
/// The captioner as training sees it: a <see cref="Blip2T5"/>, its tokenizer and prompt. Everything the CE and SCST
/// updates need goes through here (loss, generation, teacher-forced log-probs, decoding), so the plain trainer, the
/// actor learner and the rollout workers run exactly the same computation.
/// </summary>
public sealed class Policy : IDisposable
{
    public Blip2T5 Model { get; }
    public ICaptionTokenizer Tokenizer { get; }
    public string Prompt { get; }
    public int MaxTxtLen { get; }
    public Device Device { get; }
    /// <summary><c>run.amp</c>: the matmul dtype of <see cref="Autocast"/> (fp32 master weights); null: each module in its stored dtype.</summary>
    public ScalarType? AmpDType { get; }

    public Policy(Blip2T5 model, ICaptionTokenizer tokenizer, string prompt, int maxTxtLen, Device device, ScalarType? ampDType = null)
    {
        Model = model; Tokenizer = tokenizer; Prompt = prompt; MaxTxtLen = maxTxtLen; Device = device;
        AmpDType = ampDType;
    }

    /// <summary>Prompt ids [B, P] and mask for the encoder, or nulls when there is no prompt (image only).</summary>
    private (Tensor? Ids, Tensor? Mask) PromptInputs(long batch)
    {
        if (Prompt.Length == 0) return (null, null);
        var (ids, mask) = Tokenizer.EncodeBatch(Enumerable.Repeat(Prompt, (int)batch).ToList(), MaxTxtLen);
        return (ids.to(Device), mask.to(Device));
    }

    /// <summary>Labels [B, T]: caption ids ending in EOS, -100 where padded.</summary>
    public Tensor Labels(IReadOnlyList<string> captions)
    {
        var (ids, mask) = Tokenizer.EncodeBatch(captions, MaxTxtLen);
        return ids.masked_fill(mask.eq(Scalars.Of(0L)), Scalars.Of(-100L)).to(Device);
    }

    /// <summary>Mean token cross-entropy of the captions given the images (teacher forcing).</summary>
    public Tensor CrossEntropy(Tensor pixels, IReadOnlyList<string> captions, double labelSmoothing)
    {
        var (ids, mask) = PromptInputs(pixels.shape[0]);
        using var amp = Autocast.Enter(AmpDType);
        return Model.Forward(pixels, ids, mask, Labels(captions), labelSmoothing).Loss;
    }

    public GenerationResult Generate(Tensor pixels, GenerationOptions options)
    {
        var (ids, mask) = PromptInputs(pixels.shape[0]);
        using var amp = Autocast.Enter(AmpDType);
        return Model.Generate(pixels, ids, mask, options);
    }

    /// <summary>Per-token log-probs [N, L-1] (with gradients) of sequences generated for <paramref name="pixels"/>, and their mask.</summary>
    public (Tensor TokenLogProbs, Tensor Mask) SequenceLogProbs(Tensor pixels, Tensor sequences)
    {
        var (ids, mask) = PromptInputs(pixels.shape[0]);
        using var amp = Autocast.Enter(AmpDType);
        return Model.SequenceLogProbs(pixels, ids, mask, sequences);
    }

    /// <summary>Text of each generated row, cut at the first EOS.</summary>
    public string[] Decode(Tensor sequences)
    {
        var n = (int)sequences.shape[0];
        var len = (int)sequences.shape[1];
        var flat = sequences.cpu().data<long>().ToArray();
        var result = new string[n];
        for (var i = 0; i < n; i++)
        {
            var row = new List<int>(len);
            for (var t = 1; t < len; t++) // position 0 is the decoder start token
            {
                var id = (int)flat[i * len + t];
                if (id == Tokenizer.EosId) break;
                // T5 pads its embedding past the vocabulary (32128 rows, 32100 ids): such an id has no text.
                if (id < Tokenizer.VocabSize) row.Add(id);
            }
            result[i] = Tokenizer.Decode(row);
        }
        return result;
    }

    public void Dispose() => Model.Dispose();
}
