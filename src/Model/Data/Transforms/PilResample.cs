namespace Scst.Model.Data.Transforms;

/// <summary>
/// PIL's <c>Image.resize(size, BICUBIC)</c> for 8-bit RGB, as Pillow 9.4's libImaging/Resample.c computes it:
/// separable (horizontal pass, then vertical), the cubic kernel with a = −0.5 widened by the scale factor when
/// downscaling (antialiasing), coefficients normalised per output pixel and rounded to 22-bit fixed point, sums
/// rounded and clipped to 0..255. torchvision's <c>Resize</c>/<c>RandomResizedCrop</c> on a PIL image call exactly
/// this, so BLIP's transforms are reproduced to the byte.
/// </summary>
public static class PilResample
{
    private const int PrecisionBits = 32 - 8 - 2;
    private const double Support = 2.0; // bicubic

    private static double Bicubic(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /// <summary>Resizes <paramref name="src"/> to <paramref name="width"/> × <paramref name="height"/>; a same-size resize is a copy, as in PIL.</summary>
    public static RgbImage ResizeBicubic(RgbImage src, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"target size {width}x{height} must be positive.");
        if (src.Width == width && src.Height == height) return src.Clone();
        var (boundsH, kH, ksizeH) = Coefficients(src.Width, 0f, src.Width, width);
        var (boundsV, kV, ksizeV) = Coefficients(src.Height, 0f, src.Height, height);

        var image = src;
        if (width != src.Width)
        {
            // Only the rows the vertical pass reads are resampled horizontally.
            var first = boundsV[0];
            var last = boundsV[2 * height - 2] + boundsV[2 * height - 1];
            if (height != src.Height)
                for (var i = 0; i < height; i++) boundsV[2 * i] -= first;
            else (first, last) = (0, src.Height);
            image = Horizontal(src, first, last - first, width, boundsH, kH, ksizeH);
        }
        if (height != src.Height) image = Vertical(image, height, boundsV, kV, ksizeV);
        return image;
    }

    /// <summary>precompute_coeffs + normalize_coeffs_8bpc: per output pixel its first input index, count and fixed-point weights.</summary>
    private static (int[] Bounds, int[] Kernel, int KSize) Coefficients(int inSize, float in0, float in1, int outSize)
    {
        double scale = (double)(in1 - in0) / outSize, filterScale = Math.Max(scale, 1.0);
        var support = Support * filterScale;
        var ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var kernel = new int[outSize * ksize];
        var k = new double[ksize];
        for (var xx = 0; xx < outSize; xx++)
        {
            var center = in0 + (xx + 0.5) * scale;
            var ss = 1.0 / filterScale;
            var xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            var xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            var ww = 0.0;
            for (var x = 0; x < xmax; x++)
            {
                var w = Bicubic((x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (var x = 0; x < xmax; x++)
            {
                var w = ww != 0.0 ? k[x] / ww : k[x];
                kernel[xx * ksize + x] = w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits));
            }
            bounds[2 * xx] = xmin;
            bounds[2 * xx + 1] = xmax;
        }
        return (bounds, kernel, ksize);
    }

    private static byte Clip8(int v)
    {
        var s = v >> PrecisionBits;
        return s < 0 ? (byte)0 : s > 255 ? (byte)255 : (byte)s;
    }

    private static RgbImage Horizontal(RgbImage src, int rowOffset, int rows, int width, int[] bounds, int[] kernel, int ksize)
    {
        var dst = new RgbImage(width, rows);
        byte[] ip = src.Pixels, op = dst.Pixels;
        var rowBytes = src.Width * 3;
        for (var yy = 0; yy < rows; yy++)
        {
            var row = ip.AsSpan((yy + rowOffset) * rowBytes, rowBytes);
            var outRow = op.AsSpan(yy * width * 3, width * 3);
            for (var xx = 0; xx < width; xx++)
            {
                int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
                var k = kernel.AsSpan(xx * ksize, xmax);
                var taps = row.Slice(xmin * 3, xmax * 3);
                int s0 = 1 << (PrecisionBits - 1), s1 = s0, s2 = s0;
                for (int x = 0, p = 0; x < k.Length; x++, p += 3)
                {
                    var w = k[x];
                    s0 += taps[p] * w;
                    s1 += taps[p + 1] * w;
                    s2 += taps[p + 2] * w;
                }
                outRow[3 * xx] = Clip8(s0);
                outRow[3 * xx + 1] = Clip8(s1);
                outRow[3 * xx + 2] = Clip8(s2);
            }
        }
        return dst;
    }

    private static RgbImage Vertical(RgbImage src, int height, int[] bounds, int[] kernel, int ksize)
    {
        var rowBytes = src.Width * 3;
        var dst = new RgbImage(src.Width, height);
        byte[] ip = src.Pixels, op = dst.Pixels;
        // Row by row (cache-friendly): the same integer sums as PIL's per-pixel loop, in the same tap order.
        var acc = new int[rowBytes];
        for (var yy = 0; yy < height; yy++)
        {
            int ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1], kOff = yy * ksize;
            Array.Fill(acc, 1 << (PrecisionBits - 1));
            for (var y = 0; y < ymax; y++)
            {
                var w = kernel[kOff + y];
                var row = ip.AsSpan((y + ymin) * rowBytes, rowBytes);
                for (var i = 0; i < row.Length; i++) acc[i] += row[i] * w;
            }
            var outRow = op.AsSpan(yy * rowBytes, rowBytes);
            for (var i = 0; i < outRow.Length; i++) outRow[i] = Clip8(acc[i]);
        }
        return dst;
    }
}
