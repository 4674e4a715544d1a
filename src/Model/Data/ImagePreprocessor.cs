using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Model.Data;

/// <summary>
/// BLIP's evaluation image transform (LAVIS <c>blip_image_eval</c>): decode as RGB, resize to
/// <c>image_size × image_size</c> with a bicubic filter, scale to [0, 1], normalise per channel with the CLIP
/// mean/std BLIP-2 was trained with. Output is channels-first, like <c>ToTensor</c>.
/// </summary>
/// <remarks>
/// Skia's Catmull-Rom cubic (B=0, C=0.5) is the same kernel as PIL's bicubic (a = −0.5), but PIL widens the kernel
/// when downscaling (antialiasing) and Skia does not, so large downscales differ slightly from torchvision's
/// output. Images already at the target size (the built-in shapes set) are not resampled at all.
/// </remarks>
public sealed class ImagePreprocessor(int imageSize = 224, float[]? mean = null, float[]? std = null)
{
    public static readonly float[] BlipMean = [0.48145466f, 0.4578275f, 0.40821073f];
    public static readonly float[] BlipStd = [0.26862954f, 0.26130258f, 0.27577711f];

    public int ImageSize { get; } = imageSize > 0 ? imageSize : throw new ArgumentOutOfRangeException(nameof(imageSize));
    public float[] Mean { get; } = mean ?? BlipMean;
    public float[] Std { get; } = std ?? BlipStd;

    /// <summary>Decodes and preprocesses one image file into a CHW float array of length 3·S·S.</summary>
    public float[] Load(string path)
    {
        using var bitmap = Decode(path);
        return Preprocess(bitmap);
    }

    /// <summary>Preprocesses an already decoded bitmap into a CHW float array of length 3·S·S.</summary>
    public float[] Preprocess(SKBitmap source)
    {
        var s = ImageSize;
        var info = new SKImageInfo(s, s, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var rgba = new SKBitmap(info);
        if (source.Width == s && source.Height == s)
        {
            if (!source.CopyTo(rgba, SKColorType.Rgba8888))
                throw new InvalidOperationException($"cannot convert a {source.ColorType} image to RGBA.");
        }
        else if (!source.ScalePixels(rgba, new SKSamplingOptions(SKCubicResampler.CatmullRom)))
            throw new InvalidOperationException($"cannot resize a {source.Width}x{source.Height} {source.ColorType} image.");

        var pixels = rgba.GetPixelSpan();
        var plane = s * s;
        var result = new float[3 * plane];
        // PIL's convert("RGB") drops alpha without compositing; reading unpremultiplied RGB does the same.
        for (var i = 0; i < plane; i++)
            for (var c = 0; c < 3; c++)
                result[c * plane + i] = (pixels[4 * i + c] / 255f - Mean[c]) / Std[c];
        return result;
    }

    /// <summary>Loads several images into one <c>[B, 3, S, S]</c> float32 tensor, decoding in parallel.</summary>
    public Tensor LoadBatch(IReadOnlyList<string> paths, Device? device = null)
    {
        var plane = 3 * ImageSize * ImageSize;
        var data = new float[paths.Count * plane];
        Parallel.For(0, paths.Count, i => Load(paths[i]).CopyTo(data, i * plane));
        var t = torch.tensor(data, [paths.Count, 3, ImageSize, ImageSize]);
        return device is null ? t : t.to(device);
    }

    /// <summary>Decodes an image file, failing with the file name when it is missing or not an image.</summary>
    public static SKBitmap Decode(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"image '{path}' does not exist.", path);
        return SKBitmap.Decode(path) ?? throw new InvalidDataException($"image '{path}' cannot be decoded (not a PNG/JPEG/WebP/GIF/BMP image, or truncated).");
    }
}
