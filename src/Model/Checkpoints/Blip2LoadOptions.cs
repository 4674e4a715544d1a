using static TorchSharp.torch;

namespace Scst.Model.Checkpoints;

/// <summary>
/// How a pretrained BLIP-2 is held in memory. The default is everything in fp32 and trainable (what <c>model check</c>
/// compares against transformers); LAVIS's <c>blip2_t5</c> regime is <see cref="Lavis"/>.
/// </summary>
public sealed record Blip2LoadOptions
{
    /// <summary>Build the ViT for this image size, interpolating the position embeddings (null: the checkpoint's).</summary>
    public int? ImageSize { get; init; }
    /// <summary>Storage dtype of the ViT trunk (embeddings and encoder; <c>post_layernorm</c> is LAVIS's ln_vision and stays fp32).</summary>
    public ScalarType VisionDType { get; init; } = ScalarType.Float32;
    /// <summary>Storage dtype of the T5 language model.</summary>
    public ScalarType TextDType { get; init; } = ScalarType.Float32;
    public bool FreezeVision { get; init; }
    public bool FreezeText { get; init; }
    /// <summary>Models loaded with the same key share their frozen parts (one base per device); null: never shared.</summary>
    public string? ShareKey { get; init; }
    /// <summary>Called with (bytes read, total bytes) as tensors load.</summary>
    public Action<long, long>? Progress { get; init; }
    /// <summary>The T5 feed-forward activation over the folder's (LAVIS sets FlanT5's <c>dense_act_fn = "gelu"</c>); null: the folder's.</summary>
    public string? DenseActFn { get; init; }

    /// <summary>
    /// LAVIS's <c>blip2_t5</c>: T5 frozen in bf16; the ViT trunk frozen in <paramref name="vitDType"/> when
    /// <paramref name="freezeVit"/> (fp32 and trained otherwise); Q-Former, query tokens, projection and ln_vision train in fp32.
    /// </summary>
    public static Blip2LoadOptions Lavis(bool freezeVit, ScalarType vitDType, int? imageSize, string? shareKey) => new()
    {
        ImageSize = imageSize,
        VisionDType = freezeVit ? vitDType : ScalarType.Float32,
        TextDType = ScalarType.BFloat16,
        FreezeVision = freezeVit,
        FreezeText = true,
        ShareKey = shareKey,
    };
}
