using Scst.Model.Data.Transforms;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Model.Data;

/// <summary>
/// Decodes image files and runs one of LAVIS's BLIP image processors on them (<see cref="BlipImageTransform"/>):
/// by default <c>blip_image_eval</c> — resize to <c>image_size × image_size</c> with PIL's antialiased bicubic, scale
/// to [0, 1], normalise per channel with the CLIP mean/std BLIP-2 was trained with. Output is channels-first, like
/// <c>ToTensor</c>. Decoding is Skia's: PNG is lossless and equal to PIL's; JPEG decoders may differ by a level.
/// </summary>
public sealed class ImagePreprocessor
{
    public static readonly double[] BlipMean = VisProcessorOptions.BlipMean;
    public static readonly double[] BlipStd = VisProcessorOptions.BlipStd;

    public ImagePreprocessor(int imageSize = 224, double[]? mean = null, double[]? std = null)
        : this(VisProcessorOptions.Create(VisProcessorOptions.BlipImageEval, imageSize, mean: mean, std: std)) { }

    public ImagePreprocessor(VisProcessorOptions options) => Transform = new BlipImageTransform(options);

    public BlipImageTransform Transform { get; }
    public VisProcessorOptions Options => Transform.Options;
    public int ImageSize => Transform.ImageSize;

    /// <summary>Decodes and preprocesses one image file into a CHW float array of length 3·S·S.</summary>
    public float[] Load(string path, ImageDraws? draws = null)
    {
        using var bitmap = Decode(path);
        return Preprocess(bitmap, draws);
    }

    /// <summary>Preprocesses an already decoded bitmap; <paramref name="draws"/> is required by the train processors.</summary>
    public float[] Preprocess(SKBitmap source, ImageDraws? draws = null) => Transform.Apply(RgbImage.FromBitmap(source), draws);

    /// <summary>Loads several images into one <c>[B, 3, S, S]</c> float32 tensor (eval processor), decoding in parallel.</summary>
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
