using Scst.Training.Configuration;
using Scst.Model.Blip2;
using Scst.Model.Checkpoints;
using Scst.Model.Generation;
using Scst.Model.Precision;
using Scst.Model.T5;
using Scst.Model.Tokenization;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>Captions sampled for a batch of images: K rows per image, image-major.</summary>
public sealed record RolloutBatch(
    int[] ImageIndices,
    int K,
    long[][] Sequences,
    string[] Captions,
    float[] BehaviourLogProbs,
    int[] Lengths,
    long PolicyVersion)
{
    /// <summary>
    /// Rollouts of consecutive parts of one micro-batch as one batch. Rows are padded to the longest part with
    /// <paramref name="padId"/>: a part shorter than another stopped because every row had ended (EOS), and the
    /// token mask stops at the first EOS, so padding never becomes a scored token.
    /// </summary>
    public static RolloutBatch Concat(IReadOnlyList<RolloutBatch> parts, long padId)
    {
        if (parts.Count == 1) return parts[0];
        var k = parts[0].K;
        if (parts.Any(p => p.K != k || p.PolicyVersion != parts[0].PolicyVersion))
            throw new ArgumentException("rollout parts differ in K or policy version");
        var len = parts.Max(p => p.Sequences.Length == 0 ? 0 : p.Sequences[0].Length);
        var sequences = parts.SelectMany(p => p.Sequences).Select(row =>
        {
            if (row.Length == len) return row;
            var padded = new long[len];
            row.CopyTo(padded, 0);
            Array.Fill(padded, padId, row.Length, len - row.Length);
            return padded;
        }).ToArray();
        return new RolloutBatch([.. parts.SelectMany(p => p.ImageIndices)], k, sequences, [.. parts.SelectMany(p => p.Captions)],
            [.. parts.SelectMany(p => p.BehaviourLogProbs)], [.. parts.SelectMany(p => p.Lengths)], parts[0].PolicyVersion);
    }
}

/// <summary>Copies of the policy's parameters ("model."-prefixed names), owned by one receiver, which disposes them after loading.</summary>
public sealed record PolicySnapshot(IReadOnlyList<(string Name, Tensor Tensor)> Parameters) : IDisposable
{
    public void Dispose()
    {
        foreach (var (_, t) in Parameters) t.Dispose();
    }
}

/// <summary>
/// The captioner as training sees it: a <see cref="Blip2T5"/>, its tokenizer and prompt. Everything the CE and SCST
/// steps need goes through here (loss, rollouts, teacher-forced log-probs, decoding), so the single-process trainer and
/// the actors run exactly the same computation.
/// </summary>
public sealed class CaptioningPolicy : IDisposable
{
    public Blip2T5 Model { get; }
    public ICaptionTokenizer Tokenizer { get; }
    public string Prompt { get; }
    public int MaxTxtLen { get; }
    public Device Device { get; }
    /// <summary><c>run.amp</c>: the matmul dtype of <see cref="Autocast"/> (fp32 master weights); null: each module in its stored dtype.</summary>
    public ScalarType? AmpDType { get; }

    public CaptioningPolicy(Blip2T5 model, ICaptionTokenizer tokenizer, string prompt, int maxTxtLen, Device device, ScalarType? ampDType = null)
    {
        Model = model; Tokenizer = tokenizer; Prompt = prompt; MaxTxtLen = maxTxtLen; Device = device;
        AmpDType = ampDType;
    }

    /// <summary>A freshly initialised BLIP2-T5 of the config's architecture (the demo); pretrained folders load through <see cref="PolicyModel"/>.</summary>
    public static Blip2T5 BuildModel(ModelOptions m, int vocabSize, int imageSize, int seed)
    {
        var a = m.Architecture ?? throw new InvalidOperationException("model.architecture is required when load_pretrained is false");
        var cfg = new Blip2Config
        {
            Vision = new Blip2VisionConfig
            {
                HiddenSize = a.VisionHidden, IntermediateSize = a.VisionMlp, NumHiddenLayers = a.VisionLayers,
                NumAttentionHeads = a.VisionHeads, ImageSize = imageSize, PatchSize = a.PatchSize,
            },
            QFormer = new Blip2QFormerConfig
            {
                HiddenSize = a.QformerHidden, IntermediateSize = a.QformerIntermediate, NumHiddenLayers = a.QformerLayers,
                NumAttentionHeads = a.QformerHeads, CrossAttentionFrequency = a.CrossAttentionFrequency,
                EncoderHiddenSize = a.VisionHidden, HiddenDropoutProb = a.DropoutRate, AttentionProbsDropoutProb = a.DropoutRate,
            },
            Text = new T5Config
            {
                VocabSize = vocabSize, DModel = a.DModel, DKv = a.DKv, DFf = a.DFf, NumLayers = a.EncoderLayers,
                NumDecoderLayers = a.DecoderLayers, NumHeads = a.NumHeads,
                RelativeAttentionNumBuckets = a.RelativeAttentionNumBuckets, RelativeAttentionMaxDistance = a.RelativeAttentionMaxDistance,
                DropoutRate = a.DropoutRate, FeedForwardProj = "gated-gelu",
                // LAVIS computes the gated FFN with exact gelu, HF with gelu_new: the config chooses.
                DenseActFn = m.FeedForwardActivation, IsGatedAct = true,
                TieWordEmbeddings = false, ScaleDecoderOutputs = false,
            },
            NumQueryTokens = a.NumQueryTokens,
        };
        var model = new Blip2T5(cfg);
        using var g = new Generator((ulong)seed);
        model.InitWeights(g);
        return model;
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
        return ids.masked_fill(mask == 0, -100).to(Device);
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
