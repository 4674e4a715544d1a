namespace Scst.Model.Data.Transforms;

/// <summary>
/// OpenCV's <c>cv2.warpAffine(img, M, (W, H), flags=INTER_LINEAR, borderValue=fill)</c> for 8-bit RGB, with its
/// fixed-point arithmetic, which LAVIS's RandomAugment geometry (shear, translate, rotate) runs through: the forward
/// matrix is inverted in double; source coordinates are stepped in 1/1024 pixel and quantised to 1/32 pixel
/// (INTER_BITS = 5); the bilinear weights are 15-bit integers of the 32 × 32 sub-pixel table and the weighted sum is
/// rounded; neighbours outside the image take the fill value (BORDER_CONSTANT).
/// </summary>
public static class OpenCvWarp
{
    private const int InterBits = 5, InterTabSize = 1 << InterBits;
    private const int AbBits = 10, AbScale = 1 << AbBits;
    private const int CoefBits = 15;

    /// <param name="m">The 2 × 3 forward matrix, row-major (destination = M · source, as <c>warpAffine</c> without WARP_INVERSE_MAP).</param>
    public static RgbImage WarpAffine(RgbImage src, double[] m, byte fill)
    {
        // cv::warpAffine inverts M unless WARP_INVERSE_MAP is given.
        var d = m[0] * m[4] - m[1] * m[3];
        d = d != 0 ? 1.0 / d : 0;
        double a11 = m[4] * d, a22 = m[0] * d;
        double i0 = a11, i1 = m[1] * -d, i3 = m[3] * -d, i4 = a22;
        double i2 = -i0 * m[2] - i1 * m[5], i5 = -i3 * m[2] - i4 * m[5];

        int w = src.Width, h = src.Height;
        var dst = new RgbImage(w, h);
        var adelta = new int[w];
        var bdelta = new int[w];
        for (var x = 0; x < w; x++)
        {
            adelta[x] = SaturateInt(i0 * x * AbScale);
            bdelta[x] = SaturateInt(i3 * x * AbScale);
        }
        const int roundDelta = AbScale / InterTabSize / 2;
        byte[] sp = src.Pixels, dp = dst.Pixels;
        for (var y = 0; y < h; y++)
        {
            var x0 = SaturateInt((i1 * y + i2) * AbScale) + roundDelta;
            var y0 = SaturateInt((i4 * y + i5) * AbScale) + roundDelta;
            for (var x = 0; x < w; x++)
            {
                var sx = (x0 + adelta[x]) >> (AbBits - InterBits);
                var sy = (y0 + bdelta[x]) >> (AbBits - InterBits);
                int fx = sx & (InterTabSize - 1), fy = sy & (InterTabSize - 1);
                sx >>= InterBits;
                sy >>= InterBits;
                // The table's weights are exact: (32 − fx)(32 − fy)/1024 · 2^15 etc.
                int w00 = (InterTabSize - fx) * (InterTabSize - fy) * 32, w01 = fx * (InterTabSize - fy) * 32;
                int w10 = (InterTabSize - fx) * fy * 32, w11 = fx * fy * 32;
                var o = (y * w + x) * 3;
                if (sx >= w || sx + 1 < 0 || sy >= h || sy + 1 < 0)
                {
                    dp[o] = dp[o + 1] = dp[o + 2] = fill;
                    continue;
                }
                bool x0In = sx >= 0, x1In = sx + 1 < w, y0In = sy >= 0, y1In = sy + 1 < h;
                for (var c = 0; c < 3; c++)
                {
                    int v00 = x0In && y0In ? sp[(sy * w + sx) * 3 + c] : fill;
                    int v01 = x1In && y0In ? sp[(sy * w + sx + 1) * 3 + c] : fill;
                    int v10 = x0In && y1In ? sp[((sy + 1) * w + sx) * 3 + c] : fill;
                    int v11 = x1In && y1In ? sp[((sy + 1) * w + sx + 1) * 3 + c] : fill;
                    var sum = v00 * w00 + v01 * w01 + v10 * w10 + v11 * w11;
                    dp[o + c] = (byte)Math.Clamp((sum + (1 << (CoefBits - 1))) >> CoefBits, 0, 255);
                }
            }
        }
        return dst;
    }

    // saturate_cast<int>(double): round half to even, clamped.
    private static int SaturateInt(double v) =>
        (int)Math.Clamp(Math.Round(v, MidpointRounding.ToEven), int.MinValue, int.MaxValue);
}
