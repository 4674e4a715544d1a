namespace Scst.Model.Data.Transforms;

/// <summary>
/// The image operations of LAVIS's <c>RandomAugment</c> (lavis/processors/randaugment.py) on 8-bit RGB, each with the
/// arithmetic LAVIS's numpy/OpenCV code performs, so that the same parameters give the same bytes
/// (tests/data/images/make_expected.py runs LAVIS's own functions as the oracle). Two deliberate differences, both
/// where LAVIS's code does not do what it says (its docstrings promise PIL's results):
/// <list type="bullet">
/// <item><see cref="AutoContrast"/> is PIL's <c>ImageOps.autocontrast</c>. LAVIS's numpy version negates the channel
/// minimum as a uint8 (<c>-low</c> wraps to 256 − low), which turns every channel whose minimum is above 0 pure white;
/// the two agree on channels whose minimum is 0.</item>
/// <item><see cref="Sharpness"/> with a factor above 1 clips to 0..255 as PIL's <c>ImageEnhance</c> does, where LAVIS's
/// <c>astype(np.uint8)</c> wraps. LAVIS's RandomAugment(2, 5) uses the factor 1.0 (an exact identity) only.</item>
/// </list>
/// </summary>
public static class AugmentOps
{
    /// <summary>PIL's <c>ImageOps.autocontrast(image)</c> (cutoff 0): each channel stretched so its min → 0 and max → 255, truncating.</summary>
    public static RgbImage AutoContrast(RgbImage img)
    {
        var luts = new byte[3][];
        for (var c = 0; c < 3; c++)
        {
            int lo = 255, hi = 0;
            for (var i = c; i < img.Pixels.Length; i += 3)
            {
                lo = Math.Min(lo, img.Pixels[i]);
                hi = Math.Max(hi, img.Pixels[i]);
            }
            var lut = luts[c] = new byte[256];
            if (hi <= lo)
            {
                for (var v = 0; v < 256; v++) lut[v] = (byte)v;
                continue;
            }
            var scale = 255.0 / (hi - lo);
            var offset = -lo * scale;
            for (var v = 0; v < 256; v++) lut[v] = (byte)Math.Clamp((int)(v * scale + offset), 0, 255);
        }
        return ApplyLuts(img, luts);
    }

    /// <summary>PIL's <c>ImageOps.equalize</c> (LAVIS's <c>equalize_func</c> gives the same bytes).</summary>
    public static RgbImage Equalize(RgbImage img)
    {
        var luts = new byte[3][];
        for (var c = 0; c < 3; c++)
        {
            var hist = new long[256];
            for (var i = c; i < img.Pixels.Length; i += 3) hist[img.Pixels[i]]++;
            var lut = luts[c] = new byte[256];
            for (var v = 0; v < 256; v++) lut[v] = (byte)v;
            // step = (pixels − count of the highest occupied level) // 255; 0 means nothing to spread.
            var last = 255;
            while (last > 0 && hist[last] == 0) last--;
            long total = 0;
            for (var v = 0; v < 256; v++) total += hist[v];
            var step = (total - hist[last]) / 255;
            if (step == 0) continue;
            var n = step / 2;
            for (var v = 0; v < 256; v++)
            {
                lut[v] = (byte)Math.Min(n / step, 255);
                n += hist[v];
            }
        }
        return ApplyLuts(img, luts);
    }

    /// <summary>LAVIS's <c>brightness_func</c>: <c>float32(v) · factor</c>, clipped to 0..255 and truncated.</summary>
    public static RgbImage Brightness(RgbImage img, double factor)
    {
        var lut = new byte[256];
        var f = (float)factor;
        for (var v = 0; v < 256; v++) lut[v] = (byte)Math.Clamp(v * f, 0f, 255f);
        return ApplyLuts(img, [lut, lut, lut]);
    }

    /// <summary>
    /// LAVIS's <c>sharpness_func</c>: blend towards the 3×3 smoothing [[1,1,1],[1,5,1],[1,1,1]]/13 (rounded to uint8)
    /// with <c>degenerate + factor · (img − degenerate)</c> in float32, truncated; the one-pixel border is kept.
    /// </summary>
    public static RgbImage Sharpness(RgbImage img, double factor)
    {
        if (factor == 1.0) return img.Clone();
        int w = img.Width, h = img.Height;
        var result = img.Clone();
        if (w < 3 || h < 3) return factor == 0.0 ? Smooth(img) : result;
        var degenerate = Smooth(img);
        if (factor == 0.0) return degenerate;
        var f = (float)factor;
        for (var y = 1; y < h - 1; y++)
            for (var x = 1; x < w - 1; x++)
                for (var c = 0; c < 3; c++)
                {
                    var i = (y * w + x) * 3 + c;
                    float d = degenerate.Pixels[i];
                    var v = d + f * (img.Pixels[i] - d);
                    result.Pixels[i] = (byte)Math.Clamp((int)v, 0, 255);
                }
        return result;
    }

    // cv2.filter2D(img, -1, kernel) with BORDER_REFLECT_101; the sum (S₈ + 5·centre)/13 is never k + ½, so rounding
    // the exact quotient equals OpenCV's float sum rounded half to even.
    private static RgbImage Smooth(RgbImage img)
    {
        int w = img.Width, h = img.Height;
        var result = new RgbImage(w, h);
        static int Reflect(int i, int n) => n == 1 ? 0 : i < 0 ? -i : i >= n ? 2 * n - 2 - i : i;
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
                for (var c = 0; c < 3; c++)
                {
                    var sum = 0;
                    for (var dy = -1; dy <= 1; dy++)
                        for (var dx = -1; dx <= 1; dx++)
                            sum += img.Pixels[(Reflect(y + dy, h) * w + Reflect(x + dx, w)) * 3 + c] * (dx == 0 && dy == 0 ? 5 : 1);
                    result.Pixels[(y * w + x) * 3 + c] = (byte)Math.Clamp((int)Math.Round(sum / 13.0, MidpointRounding.ToEven), 0, 255);
                }
        return result;
    }

    /// <summary>LAVIS's <c>shear_x_func</c>: <c>warpAffine</c> with [[1, factor, 0], [0, 1, 0]] (float32), bilinear, constant fill.</summary>
    public static RgbImage ShearX(RgbImage img, double factor, byte fill) =>
        OpenCvWarp.WarpAffine(img, [1, (float)factor, 0, 0, 1, 0], fill);

    /// <summary>LAVIS's <c>shear_y_func</c>: <c>warpAffine</c> with [[1, 0, 0], [factor, 1, 0]].</summary>
    public static RgbImage ShearY(RgbImage img, double factor, byte fill) =>
        OpenCvWarp.WarpAffine(img, [1, 0, 0, (float)factor, 1, 0], fill);

    /// <summary>LAVIS's <c>translate_x_func</c>: <c>warpAffine</c> with [[1, 0, −offset], [0, 1, 0]].</summary>
    public static RgbImage TranslateX(RgbImage img, double offset, byte fill) =>
        OpenCvWarp.WarpAffine(img, [1, 0, -(float)offset, 0, 1, 0], fill);

    /// <summary>LAVIS's <c>translate_y_func</c>: <c>warpAffine</c> with [[1, 0, 0], [0, 1, −offset]].</summary>
    public static RgbImage TranslateY(RgbImage img, double offset, byte fill) =>
        OpenCvWarp.WarpAffine(img, [1, 0, 0, 0, 1, -(float)offset], fill);

    /// <summary>LAVIS's <c>rotate_func</c>: <c>getRotationMatrix2D((W/2, H/2), degrees, 1)</c> then <c>warpAffine</c> (counter-clockwise for positive degrees).</summary>
    public static RgbImage Rotate(RgbImage img, double degrees, byte fill)
    {
        double cx = (float)(img.Width / 2.0), cy = (float)(img.Height / 2.0); // cv::Point2f
        var angle = degrees * Math.PI / 180;
        double alpha = Math.Cos(angle), beta = Math.Sin(angle);
        return OpenCvWarp.WarpAffine(img, [alpha, beta, (1 - alpha) * cx - beta * cy, -beta, alpha, beta * cx + (1 - alpha) * cy], fill);
    }

    private static RgbImage ApplyLuts(RgbImage img, byte[][] luts)
    {
        var result = new RgbImage(img.Width, img.Height);
        for (var i = 0; i < img.Pixels.Length; i++) result.Pixels[i] = luts[i % 3][img.Pixels[i]];
        return result;
    }
}
