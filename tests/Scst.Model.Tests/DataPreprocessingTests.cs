using Scst.Model;
using Scst.Model.Data;
using SkiaSharp;

namespace Scst.Model.Tests;

public class DataPreprocessingTests
{
    [Theory]
    [InlineData("A man (riding) a horse!", "", 50, "a man riding a horse")]
    [InlineData("Two  dogs;   one cat~ #tag: \"yes\"*.", "", 50, "two dogs one cat tag yes")]
    [InlineData("It's a dog, isn't it?", "", 50, "it's a dog, isn't it?")] // comma, ? and ' are not in BLIP's set
    [InlineData("one two three four five", "a picture of ", 3, "a picture of one two three")]
    [InlineData("  Hello.\n", "", 50, "hello")]
    public void Blip_caption_matches_lavis_pre_caption(string raw, string prompt, int maxWords, string expected) =>
        Assert.Equal(expected, new BlipCaptionProcessor(prompt, maxWords).Process(raw));

    [Fact]
    public void Known_pixel_is_normalised_with_blip_mean_and_std()
    {
        using var f = new DataTestFiles();
        var path = f.Png("px.png", 8, 8, new SKColor(255, 128, 0));
        var x = new ImagePreprocessor(imageSize: 8).Load(path);
        Assert.Equal(3 * 8 * 8, x.Length);
        var expected = new[]
        {
            (1f - 0.48145466f) / 0.26862954f,
            (128 / 255f - 0.4578275f) / 0.26130258f,
            (0f - 0.40821073f) / 0.27577711f,
        };
        for (var c = 0; c < 3; c++)
            for (var i = 0; i < 64; i++)
                Assert.Equal(expected[c], x[c * 64 + i], 5);
    }

    [Fact]
    public void Resize_keeps_a_flat_colour_and_batches_to_bchw()
    {
        TorchRuntime.Initialize();
        using var f = new DataTestFiles();
        var a = f.Png("a.png", 40, 30, new SKColor(10, 200, 60));
        var b = f.Png("b.png", 5, 7, new SKColor(10, 200, 60));
        var pre = new ImagePreprocessor(imageSize: 16);
        using var batch = pre.LoadBatch([a, b]);
        Assert.Equal(new long[] { 2, 3, 16, 16 }, batch.shape);
        var green = (200 / 255f - 0.4578275f) / 0.26130258f;
        Assert.Equal(green, batch[0, 1].mean().item<float>(), 3);
        Assert.Equal(green, batch[1, 1].mean().item<float>(), 3);
    }

    [Fact]
    public void Undecodable_image_error_names_file()
    {
        using var f = new DataTestFiles();
        var path = f.Write("bad.jpg", "nope");
        var e = Assert.Throws<InvalidDataException>(() => new ImagePreprocessor(8).Load(path));
        Assert.Contains(path, e.Message);
    }
}
