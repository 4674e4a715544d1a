using Scst.Model.Data;
using Scst.Model.Data.Transforms;

namespace Scst.Model.Tests;

/// <summary>RandomResizedCrop's parameter sampling, the flip and RandomAugment draws, keyed by (seed, epoch, image).</summary>
public class ImageTransformSamplingTests
{
    private static RgbImage Noise(int w, int h, int seed)
    {
        var r = new Random(seed);
        var px = new byte[w * h * 3];
        r.NextBytes(px);
        return new RgbImage(w, h, px);
    }

    [Theory]
    [InlineData(640, 480, 0.5, 1.0, false)]
    [InlineData(97, 301, 0.08, 1.0, false)]
    [InlineData(50, 50, 0.9, 0.9, false)]
    [InlineData(1000, 1000, 0.1, 0.5, true)] // every try fits: the accepted fraction is the uniform draw
    public void Crop_boxes_fit_and_keep_the_area_and_ratio_range(int width, int height, double minScale, double maxScale, bool noRejection)
    {
        var fractions = new List<double>();
        for (var key = 0; key < 2000; key++)
        {
            var box = BlipImageTransform.SampleCrop(width, height, minScale, maxScale, new ImageDraws(7, 3, key));
            Assert.Equal(box, BlipImageTransform.SampleCrop(width, height, minScale, maxScale, new ImageDraws(7, 3, key)));
            Assert.InRange(box.Top, 0, height - box.Height);
            Assert.InRange(box.Left, 0, width - box.Width);
            Assert.True(box.Width > 0 && box.Height > 0);
            // get_params rounds w = √(A·r) and h = √(A/r) to integers: the area and ratio hold up to that rounding,
            // unless all ten tries missed and the centre crop was taken.
            double w = box.Width, h = box.Height, area = (double)width * height;
            if (box == Fallback(width, height)) continue;
            var slack = 0.5 * (w + h) + 0.25;
            Assert.InRange(w * h, minScale * area - slack, maxScale * area + slack);
            Assert.True((w - 0.5) / (h + 0.5) <= 4.0 / 3.0, $"{box}: ratio above 4/3 beyond rounding");
            Assert.True((w + 0.5) / (h - 0.5) >= 3.0 / 4.0, $"{box}: ratio below 3/4 beyond rounding");
            fractions.Add(w * h / area);
        }
        if (noRejection)
        {
            // The area fraction is uniform over [min, max]: its mean sits in the middle and it reaches both ends.
            Assert.InRange(fractions.Average(), (minScale + maxScale) / 2 - 0.01, (minScale + maxScale) / 2 + 0.01);
            Assert.True(fractions.Min() < minScale + 0.05 * (maxScale - minScale));
            Assert.True(fractions.Max() > maxScale - 0.05 * (maxScale - minScale));
        }
    }

    // torchvision's fallback: the centre crop of the whole image, clamped to the ratio range.
    private static CropBox Fallback(int width, int height)
    {
        var r = (double)width / height;
        var (w, h) = r < 0.75 ? (width, (int)Math.Round(width / 0.75, MidpointRounding.ToEven))
            : r > 4.0 / 3.0 ? ((int)Math.Round(height * 4.0 / 3.0, MidpointRounding.ToEven), height) : (width, height);
        return new CropBox((height - h) / 2, (width - w) / 2, h, w);
    }

    [Fact]
    public void Crop_falls_back_to_a_centre_crop_when_no_try_fits()
    {
        // The full area at a ratio in [3/4, 4/3] never fits a 200 × 10 strip: ten misses, then the centre crop at ratio 4/3.
        var box = BlipImageTransform.SampleCrop(200, 10, 1.0, 1.0, new ImageDraws(1, 0, 0));
        Assert.Equal(new CropBox(0, 93, 10, 13), box);
        Assert.Equal(new CropBox(93, 0, 13, 10), BlipImageTransform.SampleCrop(10, 200, 1.0, 1.0, new ImageDraws(1, 0, 0)));
        // A square that cannot be cut to the area asked: the whole image.
        Assert.Equal(new CropBox(0, 0, 1, 1), BlipImageTransform.SampleCrop(1, 1, 0.5, 0.5, new ImageDraws(1, 0, 0)));
    }

    [Fact]
    public void Draws_are_a_function_of_seed_epoch_and_image_only()
    {
        var t = new BlipImageTransform(VisProcessorOptions.Create(VisProcessorOptions.BlipImageTrain, 16));
        var img = Noise(40, 30, 5);
        var a = t.Apply(img, new ImageDraws(42, 2, 17));
        // Other images transformed in between, in another order, on other threads: the same pixels.
        Parallel.For(0, 8, k => t.Apply(Noise(33, 21, k), new ImageDraws(42, 2, k)));
        Assert.Equal(a, t.Apply(img, new ImageDraws(42, 2, 17)));
        Assert.NotEqual(a, t.Apply(img, new ImageDraws(42, 3, 17)));
        Assert.NotEqual(a, t.Apply(img, new ImageDraws(43, 2, 17)));
        Assert.NotEqual(a, t.Apply(img, new ImageDraws(42, 2, 18)));
    }

    [Fact]
    public void Flip_and_op_choice_follow_lavis_probabilities()
    {
        var t = new BlipImageTransform(VisProcessorOptions.Create(VisProcessorOptions.Blip2ImageTrain, 8, 1.0, 1.0));
        var img = Noise(8, 8, 1); // a full-size crop of a square at scale 1 is the image itself: only the flip remains
        int flips = 0, n = 4000;
        for (var k = 0; k < n; k++)
        {
            var px = t.Pixels(img, new ImageDraws(3, 0, k)).Pixels;
            if (px.SequenceEqual(img.FlipHorizontal().Pixels)) flips++;
            else Assert.Equal(img.Pixels, px);
        }
        Assert.InRange(flips / (double)n, 0.46, 0.54);

        // RandomAugment: 2 ops with replacement from 10, each applied with probability 1/2.
        var counts = new int[BlipImageTransform.AugmentNames.Length];
        for (var k = 0; k < n; k++)
        {
            var d = new ImageDraws(3, 0, k);
            counts[d.NextInt(counts.Length)]++;
        }
        Assert.All(counts, c => Assert.InRange(c / (double)n, 0.08, 0.12));
    }

    [Fact]
    public void Augment_ops_use_lavis_level_5_magnitudes()
    {
        var img = Noise(24, 24, 9);
        var draws = new ImageDraws(0, 0, 0);
        // Level 5: enhancement factor 1.0 (Brightness and Sharpness leave the image as it is).
        Assert.Equal(img.Pixels, BlipImageTransform.ApplyOp(img, "Brightness", 5, draws).Pixels);
        Assert.Equal(img.Pixels, BlipImageTransform.ApplyOp(img, "Sharpness", 5, draws).Pixels);
        // Rotation ±15°, shear ±0.15, translation ±5 px: the result is one of the two signed ops.
        foreach (var (op, plus, minus) in new (string, RgbImage, RgbImage)[]
                 {
                     ("Rotate", AugmentOps.Rotate(img, 15, 128), AugmentOps.Rotate(img, -15, 128)),
                     ("ShearX", AugmentOps.ShearX(img, 0.15, 128), AugmentOps.ShearX(img, -0.15, 128)),
                     ("ShearY", AugmentOps.ShearY(img, 0.15, 128), AugmentOps.ShearY(img, -0.15, 128)),
                     ("TranslateX", AugmentOps.TranslateX(img, 5, 128), AugmentOps.TranslateX(img, -5, 128)),
                     ("TranslateY", AugmentOps.TranslateY(img, 5, 128), AugmentOps.TranslateY(img, -5, 128)),
                 })
        {
            var seen = new HashSet<int>();
            for (var k = 0; k < 40; k++)
            {
                var r = BlipImageTransform.ApplyOp(img, op, 5, new ImageDraws(1, 0, k)).Pixels;
                seen.Add(r.SequenceEqual(plus.Pixels) ? 1 : r.SequenceEqual(minus.Pixels) ? -1 : 0);
            }
            Assert.Equal(new HashSet<int> { 1, -1 }, seen);
        }
    }

    [Fact]
    public void Eval_transform_needs_no_draws_and_train_transforms_refuse_to_run_without()
    {
        var img = Noise(30, 20, 2);
        var eval = new BlipImageTransform(VisProcessorOptions.Create(VisProcessorOptions.BlipImageEval, 12));
        Assert.Equal(PilResample.ResizeBicubic(img, 12, 12).Pixels, eval.Pixels(img, null).Pixels);
        var train = new BlipImageTransform(VisProcessorOptions.Create(VisProcessorOptions.BlipImageTrain, 12));
        Assert.Throws<ArgumentNullException>(() => train.Apply(img, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BlipImageTransform(VisProcessorOptions.Create(VisProcessorOptions.BlipImageTrain, 12, 0.6, 0.5)));
        Assert.Throws<ArgumentException>(() => new BlipImageTransform(VisProcessorOptions.Create(VisProcessorOptions.BlipImageEval, 12, std: [1, 0, 1])));
    }

    [Fact]
    public void Custom_mean_and_std_normalise()
    {
        var img = new RgbImage(1, 1, [255, 0, 51]);
        var x = new BlipImageTransform(VisProcessorOptions.Create(VisProcessorOptions.BlipImageEval, 1, mean: [0.5, 0.5, 0.2], std: [0.5, 0.25, 2])).Apply(img, null);
        Assert.Equal(new[] { 1f, -2f, 0f }, x);
    }
}
