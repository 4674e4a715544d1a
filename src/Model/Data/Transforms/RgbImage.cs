using SkiaSharp;

namespace Scst.Model.Data.Transforms;

/// <summary>An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC) — what PIL's "RGB" mode and numpy hold.</summary>
public sealed class RgbImage
{
    public RgbImage(int width, int height, byte[]? pixels = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}x{height} must be positive.");
        Width = width;
        Height = height;
        Pixels = pixels ?? new byte[checked(width * height * 3)];
        if (Pixels.Length != width * height * 3) throw new ArgumentException($"{Pixels.Length} bytes for a {width}x{height} RGB image.", nameof(pixels));
    }

    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }

    public RgbImage Clone() => new(Width, Height, (byte[])Pixels.Clone());

    /// <summary>PIL's <c>convert("RGB")</c>: alpha is dropped without compositing, so unpremultiplied RGB is read.</summary>
    public static RgbImage FromBitmap(SKBitmap source)
    {
        var info = new SKImageInfo(source.Width, source.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var rgba = new SKBitmap(info);
        if (!source.CopyTo(rgba, SKColorType.Rgba8888))
            throw new InvalidOperationException($"cannot convert a {source.ColorType} image to RGBA.");
        var src = rgba.GetPixelSpan();
        var image = new RgbImage(source.Width, source.Height);
        var dst = image.Pixels;
        for (int i = 0, n = source.Width * source.Height; i < n; i++)
        {
            dst[3 * i] = src[4 * i];
            dst[3 * i + 1] = src[4 * i + 1];
            dst[3 * i + 2] = src[4 * i + 2];
        }
        return image;
    }

    /// <summary>PIL's <c>crop((left, top, left + width, top + height))</c> for a box inside the image.</summary>
    public RgbImage Crop(int top, int left, int height, int width)
    {
        if (top < 0 || left < 0 || height <= 0 || width <= 0 || top + height > Height || left + width > Width)
            throw new ArgumentOutOfRangeException(nameof(top), $"crop ({top}, {left}, {height}, {width}) is not inside a {Width}x{Height} image.");
        var result = new RgbImage(width, height);
        for (var y = 0; y < height; y++)
            Array.Copy(Pixels, ((top + y) * Width + left) * 3, result.Pixels, y * width * 3, width * 3);
        return result;
    }

    /// <summary>PIL's <c>ImageOps.mirror</c> (torchvision's <c>hflip</c>).</summary>
    public RgbImage FlipHorizontal()
    {
        var result = new RgbImage(Width, Height);
        for (var y = 0; y < Height; y++)
            for (var x = 0; x < Width; x++)
            {
                int s = (y * Width + x) * 3, d = (y * Width + Width - 1 - x) * 3;
                result.Pixels[d] = Pixels[s];
                result.Pixels[d + 1] = Pixels[s + 1];
                result.Pixels[d + 2] = Pixels[s + 2];
            }
        return result;
    }

    /// <summary>torchvision's <c>ToTensor</c> then <c>Normalize(mean, std)</c>, in float32 as torch computes them: CHW.</summary>
    public float[] ToNormalizedChw(IReadOnlyList<double> meanValues, IReadOnlyList<double> stdValues)
    {
        // Normalize's mean/std become float32 tensors.
        float[] mean = [(float)meanValues[0], (float)meanValues[1], (float)meanValues[2]];
        float[] std = [(float)stdValues[0], (float)stdValues[1], (float)stdValues[2]];
        // Each channel's 256 possible outputs, computed as torch does per element ((v / 255) − mean) / std.
        var lut = new float[3 * 256];
        for (var c = 0; c < 3; c++)
            for (var v = 0; v < 256; v++)
                lut[c * 256 + v] = (v / 255f - mean[c]) / std[c];
        var plane = Width * Height;
        var result = new float[3 * plane];
        for (var c = 0; c < 3; c++)
        {
            var dst = result.AsSpan(c * plane, plane);
            var table = lut.AsSpan(c * 256, 256);
            for (var i = 0; i < plane; i++) dst[i] = table[Pixels[3 * i + c]];
        }
        return result;
    }
}
