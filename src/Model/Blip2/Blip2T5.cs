using Scst.Model.Precision;
using Scst.Model.Generation;
using Scst.Model.T5;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Scst.Model.Blip2;

/// <summary>
/// BLIP-2 with a T5 language model, HF <c>Blip2ForConditionalGeneration</c> names: <c>vision_model</c>,
/// <c>query_tokens</c>, <c>qformer</c>, <c>language_projection</c>, <c>language_model</c>. Images are float
/// [B, 3, H, W], already normalised. The projected queries enter the T5 encoder in place of the
/// <c>image_token_index</c> placeholders of the prompt, or are prepended to the prompt (LAVIS) when it has none.
/// </summary>
public sealed class Blip2T5 : nn.Module
{
    private readonly Blip2VisionModel vision_model;
    private readonly Parameter query_tokens;
    private readonly Blip2QFormerModel qformer;
    private readonly Linear language_projection;
    private readonly T5ForConditionalGeneration language_model;

    public Blip2Config Config { get; }
    /// <summary>The frozen parts this model shares with others (null: it owns all its modules).</summary>
    public Blip2FrozenBase? SharedBase { get; private set; }

    /// <summary>A model of <paramref name="config"/>; with <paramref name="shared"/>, its ViT trunk and/or T5 are those of that base.</summary>
    public Blip2T5(Blip2Config config, Blip2FrozenBase? shared = null) : base(nameof(Blip2T5))
    {
        Config = config;
        SharedBase = shared;
        vision_model = new Blip2VisionModel(config.Vision, shared?.VisionTrunk);
        // Trainable in every regime, so fp32 whatever the construction dtype of the frozen parts.
        query_tokens = nn.Parameter(zeros(1, config.NumQueryTokens, config.QFormer.HiddenSize, dtype: ScalarType.Float32));
        qformer = new Blip2QFormerModel(config.QFormer);
        language_projection = nn.Linear(config.QFormer.HiddenSize, config.Text.DModel);
        language_model = shared?.LanguageModel ?? new T5ForConditionalGeneration(config.Text);
        register_module("vision_model", vision_model);
        register_parameter("query_tokens", query_tokens);
        register_module("qformer", qformer);
        register_module("language_projection", language_projection);
        register_module("language_model", language_model);
    }

    public T5ForConditionalGeneration LanguageModel => language_model;
    public Blip2VisionModel VisionModel => vision_model;
    public Blip2QFormerModel QFormer => qformer;
    public Linear LanguageProjection => language_projection;
    public Parameter QueryTokens => query_tokens;

    /// <summary>
    /// LAVIS's <c>use_grad_checkpoint</c>: activation checkpointing of each ViT layer, Q-Former layer and T5 block
    /// (encoder and decoder) in the passes that compute gradients (<see cref="ActivationCheckpoint"/>). Frozen parts whose
    /// inputs need no gradient run as they are; a frozen T5 that gradients flow through is checkpointed, which is where
    /// most of the memory is. Shared frozen parts get the setting for every sharer: it changes no result, and the
    /// sharers that only generate run without gradients, where it does nothing.
    /// </summary>
    public bool UseGradCheckpoint
    {
        get => qformer.Encoder.GradientCheckpointing;
        set
        {
            vision_model.Trunk.Encoder.GradientCheckpointing = value;
            qformer.Encoder.GradientCheckpointing = value;
            language_model.Encoder.GradientCheckpointing = value;
            language_model.Decoder.GradientCheckpointing = value;
        }
    }

    /// <summary>Makes this model's frozen parts shareable under <paramref name="key"/> (see <see cref="Blip2FrozenBase"/>).</summary>
    public Blip2FrozenBase ShareFrozen(string key, bool vision, bool text)
    {
        if (SharedBase is not null) throw new InvalidOperationException("this model already shares a frozen base");
        return SharedBase = Blip2FrozenBase.Publish(key, this, vision, text);
    }

    protected override void Dispose(bool disposing)
    {
        if (SharedBase is null) { base.Dispose(disposing); return; }
        // The shared parts belong to the base; dispose only what is this model's own.
        if (disposing)
        {
            if (SharedBase.VisionTrunk is null) { vision_model.Trunk.Embeddings.Dispose(); vision_model.Trunk.Encoder.Dispose(); }
            vision_model.PostLayerNorm.Dispose();
            if (SharedBase.LanguageModel is null) language_model.Dispose();
            qformer.Dispose();
            language_projection.Dispose();
            query_tokens.Dispose();
        }
        var b = SharedBase;
        SharedBase = null;
        b.Release();
    }

    /// <summary>Vision last hidden state, Q-Former output and projected queries for images [B, 3, H, W].</summary>
    public (Tensor Vision, Tensor QFormer, Tensor Projected) EncodeImage(Tensor pixelValues)
    {
        using var mode = CallMode.Enter(training);
        using var scope = NewDisposeScope();
        var image = vision_model.forward(pixelValues);
        var queries = qformer.forward(query_tokens.expand(image.shape[0], -1, -1), image);
        var projected = Autocast.Linear(language_projection, queries);
        return (image.MoveToOuterDisposeScope(), queries.MoveToOuterDisposeScope(), projected.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// T5 encoder inputs: embeddings [B, S, D] and mask [B, S]. With placeholders in <paramref name="inputIds"/> the
    /// projected queries replace them in order (each row must hold exactly num_query_tokens); otherwise they are
    /// prepended (<paramref name="inputIds"/> may then be null: image only).
    /// </summary>
    public (Tensor Embeds, Tensor Mask) BuildEncoderInputs(Tensor pixelValues, Tensor? inputIds, Tensor? attentionMask)
    {
        using var scope = NewDisposeScope();
        var projected = EncodeImage(pixelValues).Projected;
        var (b, q) = (projected.shape[0], projected.shape[1]);
        var dev = projected.device;
        var queryMask = ones(b, q, dtype: ScalarType.Int64, device: dev);
        if (inputIds is null) return (projected.MoveToOuterDisposeScope(), queryMask.MoveToOuterDisposeScope());
        var mask = attentionMask ?? ones_like(inputIds);
        Tensor embeds, outMask;
        var placeholders = Config.ImageTokenIndex is int idx ? inputIds.eq(Scalars.Of((long)idx)) : null;
        var count = placeholders?.sum().item<long>() ?? 0;
        if (count > 0)
        {
            if (count != b * q)
                throw new ArgumentException($"input_ids hold {count} image tokens (id {Config.ImageTokenIndex}); expected {q} per row × {b} rows.");
            var textEmbeds = language_model.Embed(inputIds.masked_fill(placeholders!, Scalars.Of(0L)));
            embeds = textEmbeds.masked_scatter(placeholders!.unsqueeze(2).expand_as(textEmbeds), projected.to(textEmbeds.dtype));
            outMask = mask;
        }
        else
        {
            embeds = cat([projected.to(language_model.DType), language_model.Embed(inputIds)], 1);
            outMask = cat([queryMask, mask.to(ScalarType.Int64)], 1);
        }
        return (embeds.MoveToOuterDisposeScope(), outMask.MoveToOuterDisposeScope());
    }

    /// <summary>T5 encoder states [B, S, D] and their mask for images and prompts.</summary>
    public (Tensor Hidden, Tensor Mask) Encode(Tensor pixelValues, Tensor? inputIds, Tensor? attentionMask)
    {
        using var mode = CallMode.Enter(training);
        using var scope = NewDisposeScope();
        var (embeds, mask) = BuildEncoderInputs(pixelValues, inputIds, attentionMask);
        var hidden = language_model.Encode(null, embeds, mask);
        return (hidden.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope());
    }

    /// <summary>HF forward with labels [B, T] (-100 ignored): mean CE loss (optionally label-smoothed) and logits.</summary>
    public (Tensor Loss, Tensor Logits) Forward(Tensor pixelValues, Tensor? inputIds, Tensor? attentionMask, Tensor labels, double labelSmoothing = 0.0)
    {
        using var mode = CallMode.Enter(training);
        using var scope = NewDisposeScope();
        var (embeds, mask) = BuildEncoderInputs(pixelValues, inputIds, attentionMask);
        var (loss, logits) = language_model.Forward(null, embeds, mask, labels, labelSmoothing: labelSmoothing);
        return (loss!.MoveToOuterDisposeScope(), logits.MoveToOuterDisposeScope());
    }

    /// <summary>Captions for images (and optional prompts): sequences [B·R, L], token log-probs, sequence scores.</summary>
    public GenerationResult Generate(Tensor pixelValues, Tensor? inputIds, Tensor? attentionMask, GenerationOptions options)
    {
        using var noGrad = no_grad();
        using var mode = CallMode.Enter(training);
        using var scope = NewDisposeScope();
        var (hidden, mask) = Encode(pixelValues, inputIds, attentionMask);
        var r = Seq2SeqGeneration.Generate(language_model, hidden, mask, options);
        r.Sequences.MoveToOuterDisposeScope(); r.TokenLogProbs.MoveToOuterDisposeScope();
        r.TokenMask.MoveToOuterDisposeScope(); r.SequenceScores.MoveToOuterDisposeScope();
        return r;
    }

    /// <summary>
    /// The learner's half of SCST: teacher-forced per-token log-probs [B·K, L-1] of <paramref name="sequences"/>
    /// (K per image, as <see cref="Generate"/> returns them) with gradients, and the token mask.
    /// </summary>
    public (Tensor TokenLogProbs, Tensor Mask) SequenceLogProbs(Tensor pixelValues, Tensor? inputIds, Tensor? attentionMask, Tensor sequences)
    {
        using var mode = CallMode.Enter(training);
        using var scope = NewDisposeScope();
        var (hidden, mask) = Encode(pixelValues, inputIds, attentionMask);
        var (lp, valid) = Seq2SeqGeneration.SequenceLogProbs(language_model, hidden, mask, sequences);
        return (lp.MoveToOuterDisposeScope(), valid.MoveToOuterDisposeScope());
    }

    /// <summary>HF-like init: T5's factors for the language model, N(0, initializer_range) elsewhere, norms 1/0, biases 0.</summary>
    public void InitWeights(Generator? generator = null)
    {
        language_model.InitWeights(generator);
        using var _ = no_grad();
        var std = Config.InitializerRange;
        foreach (var (name, p) in named_parameters())
        {
            if (name.StartsWith("language_model.", StringComparison.Ordinal)) continue;
            if (name.EndsWith("bias", StringComparison.Ordinal)) p.zero_(); // ".bias", and the ViT's q_bias / v_bias
            else if (name.Contains("layer_norm", StringComparison.Ordinal) || name.Contains("LayerNorm", StringComparison.Ordinal) || name.Contains("layernorm", StringComparison.Ordinal)) p.fill_(Scalars.Of(1.0));
            else if (name.Contains("embedding", StringComparison.Ordinal))
            {
                p.normal_(0, std, generator);
                p.clamp_(Scalars.Of(-2 * std), Scalars.Of(2 * std)); // truncated normal, as HF's trunc_normal_ for the ViT embeddings
            }
            else p.normal_(0, std, generator);
        }
    }
}
