using Scst.Model.Precision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Scst.Model.T5;

/// <summary>
/// Preallocated decoder state for incremental decoding: self-attention K/V [N, H, maxLen, d_kv] per layer written
/// in place step by step, cross-attention K/V computed once from the encoder output, and the bias tables.
/// </summary>
public sealed class T5DecoderCache : IDisposable
{
    public required Tensor[] SelfK { get; init; }
    public required Tensor[] SelfV { get; init; }
    public required Tensor[] CrossK { get; init; }
    public required Tensor[] CrossV { get; init; }
    /// <summary>[N, 1, 1, S] additive encoder key mask.</summary>
    public required Tensor CrossBias { get; init; }
    /// <summary>[1, H, maxLen, maxLen] causal relative position bias of decoder block 0.</summary>
    public required Tensor SelfBiasTable { get; init; }
    public required long MaxLength { get; init; }

    /// <summary>Reorders rows (beam search's parent beams) of the self-attention cache up to position <paramref name="length"/>, in place.</summary>
    public void Reorder(Tensor rowIndex, long length)
    {
        using var scope = NewDisposeScope();
        foreach (var c in SelfK.Concat(SelfV))
        {
            var live = c.narrow(2, 0, length);
            live.copy_(live.index_select(0, rowIndex));
        }
    }

    public void Dispose()
    {
        foreach (var t in SelfK.Concat(SelfV).Concat(CrossK).Concat(CrossV)) t.Dispose();
        CrossBias.Dispose();
        SelfBiasTable.Dispose();
    }
}

/// <summary>
/// T5 encoder-decoder with Hugging Face <c>T5ForConditionalGeneration</c> semantics and parameter names
/// (<c>shared.weight</c>, <c>encoder.block.0.layer.0.SelfAttention.q.weight</c>, ..., <c>lm_head.weight</c> when untied).
/// </summary>
public sealed class T5ForConditionalGeneration : nn.Module
{
    private readonly Embedding shared;
    private readonly T5Stack encoder, decoder;
    private readonly Linear? lm_head;

    public T5Config Config { get; }

    public T5ForConditionalGeneration(T5Config config) : base(nameof(T5ForConditionalGeneration))
    {
        Config = config;
        shared = nn.Embedding(config.VocabSize, config.DModel, dtype: config.TorchDType);
        encoder = new T5Stack(config, isDecoder: false);
        decoder = new T5Stack(config, isDecoder: true);
        register_module("shared", shared);
        register_module("encoder", encoder);
        register_module("decoder", decoder);
        if (!config.TieWordEmbeddings)
        {
            lm_head = nn.Linear(config.DModel, config.VocabSize, hasBias: false, dtype: config.TorchDType);
            register_module("lm_head", lm_head);
        }
    }

    public Embedding Shared => shared;
    public T5Stack Encoder => encoder;
    public T5Stack Decoder => decoder;

    /// <summary>The most negative finite value of a dtype: HF's additive mask value.</summary>
    public static double MaskValue(ScalarType dtype) => dtype switch
    {
        ScalarType.BFloat16 => -3.3895313892515355e38,
        ScalarType.Float16 => -65504.0,
        ScalarType.Float64 => double.MinValue,
        _ => float.MinValue,
    };

    /// <summary>[B, S] 0/1 mask → [B, 1, 1, S] additive bias (0 where attended, dtype min where masked).</summary>
    public static Tensor KeyMaskBias(Tensor attentionMask, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var m = attentionMask.to(dtype).unsqueeze(1).unsqueeze(1);
        return m.neg().add(Scalars.Of(1.0), Scalars.One).mul(Scalars.Of(MaskValue(dtype))).MoveToOuterDisposeScope();
    }

    public ScalarType DType => shared.weight!.dtype;
    public Device Device => shared.weight!.device;

    /// <summary>Token embeddings from the shared table.</summary>
    public Tensor Embed(Tensor ids) => shared.forward(ids);

    /// <summary>Encoder last hidden state [B, S, D] from ids or from embeddings (exactly one of them), with a [B, S] mask.</summary>
    public Tensor Encode(Tensor? inputIds, Tensor? inputsEmbeds, Tensor? attentionMask)
    {
        if ((inputIds is null) == (inputsEmbeds is null))
            throw new ArgumentException("give exactly one of inputIds and inputsEmbeds");
        using var scope = NewDisposeScope();
        var embeds = inputsEmbeds ?? shared.forward(inputIds!);
        var (b, s) = (embeds.shape[0], embeds.shape[1]);
        var mask = attentionMask ?? ones(b, s, dtype: ScalarType.Int64, device: embeds.device);
        var bias = encoder.PositionBias(s, s, embeds.device).to(embeds.dtype).add(KeyMaskBias(mask, embeds.dtype), Scalars.One);
        return encoder.ForwardEncoder(embeds, bias).MoveToOuterDisposeScope();
    }

    /// <summary>Logits from decoder hidden states: the optional d_model^-0.5 rescale, then the tied or separate head.</summary>
    public Tensor Head(Tensor decoderHidden)
    {
        using var scope = NewDisposeScope();
        var h = Config.ScaleDecoderOutputs ? decoderHidden.mul(Scalars.Of(Math.Pow(Config.DModel, -0.5))) : decoderHidden;
        var logits = lm_head is not null ? Autocast.Linear(lm_head, h) : F.linear(h, shared.weight!);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>Teacher-forced logits [B, T, V] for decoder inputs [B, T].</summary>
    public Tensor Decode(Tensor encoderHidden, Tensor? encoderMask, Tensor decoderInputIds)
    {
        using var scope = NewDisposeScope();
        var (b, s) = (encoderHidden.shape[0], encoderHidden.shape[1]);
        var t = decoderInputIds.shape[1];
        var dtype = encoderHidden.dtype;
        var device = encoderHidden.device;
        var mask = encoderMask ?? ones(b, s, dtype: ScalarType.Int64, device: device);
        var causal = triu(full(t, t, Scalars.Of(MaskValue(dtype)), dtype: dtype, device: device), diagonal: 1);
        var selfBias = decoder.PositionBias(t, t, device).to(dtype).add(causal, Scalars.One);
        var crossBias = KeyMaskBias(mask, dtype);
        var h = decoder.ForwardDecoder(shared.forward(decoderInputIds), selfBias, encoderHidden, crossBias);
        return Head(h).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Full forward as HF <c>model(input_ids | inputs_embeds, attention_mask, labels | decoder_input_ids)</c>:
    /// logits and, when labels are given, the mean cross-entropy over labels ≠ -100.
    /// </summary>
    public (Tensor? Loss, Tensor Logits) Forward(Tensor? inputIds, Tensor? inputsEmbeds, Tensor? attentionMask,
        Tensor? labels = null, Tensor? decoderInputIds = null, double labelSmoothing = 0.0)
    {
        using var scope = NewDisposeScope();
        if (labels is null && decoderInputIds is null) throw new ArgumentException("give labels or decoderInputIds");
        var enc = Encode(inputIds, inputsEmbeds, attentionMask);
        var decIn = decoderInputIds ?? ShiftRight(labels!, Config.DecoderStartTokenId, Config.PadTokenId);
        var logits = Decode(enc, attentionMask, decIn);
        Tensor? loss = labels is null ? null : CrossEntropy(logits, labels, labelSmoothing);
        loss?.MoveToOuterDisposeScope();
        return (loss, logits.MoveToOuterDisposeScope());
    }

    /// <summary>Mean token cross-entropy in fp32, ignoring -100 labels, with optional label smoothing.</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, double labelSmoothing = 0.0)
    {
        using var scope = NewDisposeScope();
        var v = logits.shape[^1];
        return F.cross_entropy(logits.to(ScalarType.Float32).reshape(-1, v), labels.reshape(-1),
            ignore_index: -100, label_smoothing: labelSmoothing).MoveToOuterDisposeScope();
    }

    /// <summary>HF <c>_shift_right</c>: prepend the decoder start token, drop the last label, -100 → pad.</summary>
    public static Tensor ShiftRight(Tensor labels, long decoderStartTokenId, long padTokenId)
    {
        using var scope = NewDisposeScope();
        var start = full(labels.shape[0], 1, Scalars.Of(decoderStartTokenId), dtype: ScalarType.Int64, device: labels.device);
        var shifted = cat([start, labels.narrow(1, 0, labels.shape[1] - 1)], 1);
        return shifted.masked_fill(shifted.eq(Scalars.Of(-100L)), Scalars.Of((long)padTokenId)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Builds the decoding state for <paramref name="expand"/> rows per encoder row (beams/samples), room for
    /// <paramref name="maxLength"/> decoder positions (start token included).
    /// </summary>
    public T5DecoderCache CreateCache(Tensor encoderHidden, Tensor? encoderMask, long maxLength, long expand = 1)
    {
        using var scope = NewDisposeScope();
        var (b, s) = (encoderHidden.shape[0], encoderHidden.shape[1]);
        var device = encoderHidden.device;
        var dtype = encoderHidden.dtype;
        var mask = encoderMask ?? ones(b, s, dtype: ScalarType.Int64, device: device);
        var enc = expand == 1 ? encoderHidden : encoderHidden.repeat_interleave(expand, 0);
        var n = b * expand;
        var crossK = new Tensor[decoder.NumBlocks];
        var crossV = new Tensor[decoder.NumBlocks];
        var selfK = new Tensor[decoder.NumBlocks];
        var selfV = new Tensor[decoder.NumBlocks];
        for (var i = 0; i < decoder.NumBlocks; i++)
        {
            var (k, v) = decoder.Block(i).CrossAttentionLayer!.Attention.ProjectKV(enc);
            crossK[i] = k.contiguous().MoveToOuterDisposeScope();
            crossV[i] = v.contiguous().MoveToOuterDisposeScope();
            selfK[i] = zeros(n, Config.NumHeads, maxLength, Config.DKv, dtype: dtype, device: device).MoveToOuterDisposeScope();
            selfV[i] = zeros(n, Config.NumHeads, maxLength, Config.DKv, dtype: dtype, device: device).MoveToOuterDisposeScope();
        }
        var crossBias = KeyMaskBias(expand == 1 ? mask : mask.repeat_interleave(expand, 0), dtype).MoveToOuterDisposeScope();
        var table = decoder.PositionBias(maxLength, maxLength, device).to(dtype).MoveToOuterDisposeScope();
        return new T5DecoderCache
        {
            SelfK = selfK, SelfV = selfV, CrossK = crossK, CrossV = crossV,
            CrossBias = crossBias, SelfBiasTable = table, MaxLength = maxLength,
        };
    }

    /// <summary>Logits [N, V] for the tokens [N] at decoder position <paramref name="t"/> (0 = start token).</summary>
    public Tensor Step(T5DecoderCache cache, Tensor tokens, long t)
    {
        using var scope = NewDisposeScope();
        var bias = cache.SelfBiasTable.narrow(2, t, 1).narrow(3, 0, t + 1);
        var h = decoder.StepDecoder(shared.forward(tokens.unsqueeze(1)), t, bias, cache, cache.CrossBias);
        return Head(h).squeeze(1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// HF <c>T5PreTrainedModel._init_weights</c>: N(0, factor) embeddings and head, attention and feed-forward
    /// weights scaled by fan-in (d_model^-0.5, (d_model·d_kv)^-0.5 for q, ...), norms at 1.
    /// </summary>
    public void InitWeights(Generator? generator = null)
    {
        using var _ = no_grad();
        var f = Config.InitializerFactor;
        var c = Config;
        void Normal(Tensor w, double std) => w.normal_(0, std, generator);
        Normal(shared.weight!, f * 1.0);
        if (lm_head is not null) Normal(lm_head.weight!, f * 1.0);
        foreach (var stack in new[] { encoder, decoder })
        {
            foreach (var block in stack.Blocks)
            {
                var attns = new List<T5Attention> { block.SelfAttentionLayer.Attention };
                if (block.CrossAttentionLayer is not null) attns.Add(block.CrossAttentionLayer.Attention);
                foreach (var a in attns)
                {
                    Normal(a.Q.weight!, f * Math.Pow(c.DModel * c.DKv, -0.5));
                    Normal(a.K.weight!, f * Math.Pow(c.DModel, -0.5));
                    Normal(a.V.weight!, f * Math.Pow(c.DModel, -0.5));
                    Normal(a.O.weight!, f * Math.Pow(c.NumHeads * c.DKv, -0.5));
                    if (a.RelativeAttentionBias is not null) Normal(a.RelativeAttentionBias.weight!, f * Math.Pow(c.DModel, -0.5));
                }
                foreach (var wi in block.FeedForwardLayer.Dense.InputProjections) Normal(wi.weight!, f * Math.Pow(c.DModel, -0.5));
                Normal(block.FeedForwardLayer.Dense.Wo.weight!, f * Math.Pow(c.DFf, -0.5));
            }
        }
        foreach (var (name, p) in named_parameters())
            if (name.EndsWith("layer_norm.weight", StringComparison.Ordinal)) p.fill_(Scalars.Of(f * 1.0));
    }
}
