using System.Text.Json;
using Scst.Model.Data;
using Scst.Model.Data.Transforms;
using Xunit.Abstractions;

namespace Scst.Model.Tests;

/// <summary>
/// PIL 9.4 / torchvision / LAVIS RandomAugment outputs on committed PNGs (tests/data/images/make_expected.py): the
/// resize, crop, flip and every augmentation op must give the same bytes.
/// </summary>
public class ImageTransformOracleTests(ITestOutputHelper output)
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "data", "images");
    private static readonly Lazy<JsonElement> Expected = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json"))).RootElement);

    private static byte[] Bytes(JsonElement e) => Convert.FromBase64String(e.GetString()!);

    private static RgbImage LoadPng(string file)
    {
        using var bmp = ImagePreprocessor.Decode(Path.Combine(Dir, file));
        return RgbImage.FromBitmap(bmp);
    }

    private static IEnumerable<JsonElement> Images => Expected.Value.GetProperty("images").EnumerateArray();

    private void AssertSameBytes(byte[] expected, byte[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var diff = 0;
        var maxDiff = 0;
        for (var i = 0; i < expected.Length; i++)
            if (expected[i] != actual[i]) { diff++; maxDiff = Math.Max(maxDiff, Math.Abs(expected[i] - actual[i])); }
        output.WriteLine($"{what}: {diff} of {expected.Length} bytes differ (max {maxDiff})");
        Assert.True(diff == 0, $"{what}: {diff} of {expected.Length} bytes differ, max {maxDiff} levels");
    }

    [Fact]
    public void Resize_equals_pil_bicubic_up_and_down()
    {
        foreach (var img in Images)
        {
            var src = LoadPng(img.GetProperty("file").GetString()!);
            Assert.Equal((img.GetProperty("width").GetInt32(), img.GetProperty("height").GetInt32()), (src.Width, src.Height));
            foreach (var r in img.GetProperty("resize").EnumerateObject())
            {
                var s = int.Parse(r.Name);
                AssertSameBytes(Bytes(r.Value), PilResample.ResizeBicubic(src, s, s).Pixels, $"{img.GetProperty("file")} -> {s}");
            }
        }
    }

    [Fact]
    public void Resized_crop_and_flip_equal_torchvision_on_pil()
    {
        foreach (var img in Images)
        {
            var name = img.GetProperty("file").GetString()!;
            var src = LoadPng(name);
            foreach (var c in img.GetProperty("crops").EnumerateArray())
            {
                var crop = src.Crop(c.GetProperty("top").GetInt32(), c.GetProperty("left").GetInt32(), c.GetProperty("height").GetInt32(), c.GetProperty("width").GetInt32());
                var s = c.GetProperty("size").GetInt32();
                AssertSameBytes(Bytes(c.GetProperty("pixels")), PilResample.ResizeBicubic(crop, s, s).Pixels, $"{name} crop {crop.Width}x{crop.Height}");
            }
            AssertSameBytes(Bytes(img.GetProperty("hflip")), src.FlipHorizontal().Pixels, $"{name} hflip");
        }
    }

    [Fact]
    public void Eval_transform_equals_torchvision_resize_totensor_normalize()
    {
        foreach (var img in Images)
        {
            var name = img.GetProperty("file").GetString()!;
            var expected = Bytes(img.GetProperty("normalized_24"));
            var want = new float[expected.Length / 4];
            Buffer.BlockCopy(expected, 0, want, 0, expected.Length);
            var got = new ImagePreprocessor(24).Load(Path.Combine(Dir, name));
            Assert.Equal(want.Length, got.Length);
            var max = want.Zip(got, (a, b) => Math.Abs(a - b)).Max();
            output.WriteLine($"{name}: normalised max abs diff {max:E2}");
            Assert.True(max <= 1e-6, $"{name}: max abs diff {max}");
        }
    }

    [Fact]
    public void Augment_ops_equal_lavis_randaugment()
    {
        var root = Expected.Value;
        var sizes = root.GetProperty("op_input_sizes");
        var inputs = root.GetProperty("op_inputs").EnumerateObject().ToDictionary(p => p.Name, p =>
        {
            var hw = sizes.GetProperty(p.Name).EnumerateArray().Select(e => e.GetInt32()).ToArray();
            return new RgbImage(hw[1], hw[0], Bytes(p.Value));
        });
        var count = 0;
        foreach (var op in root.GetProperty("ops").EnumerateArray())
        {
            var name = op.GetProperty("op").GetString()!;
            var input = inputs[op.GetProperty("input").GetString()!];
            var p = op.GetProperty("params").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            var result = name switch
            {
                "Identity" => input,
                "AutoContrast" => AugmentOps.AutoContrast(input),
                "Equalize" => AugmentOps.Equalize(input),
                "Brightness" => AugmentOps.Brightness(input, p[0]),
                "Sharpness" => AugmentOps.Sharpness(input, p[0]),
                "ShearX" => AugmentOps.ShearX(input, p[0], 128),
                "ShearY" => AugmentOps.ShearY(input, p[0], 128),
                "TranslateX" => AugmentOps.TranslateX(input, p[0], 128),
                "TranslateY" => AugmentOps.TranslateY(input, p[0], 128),
                "Rotate" => AugmentOps.Rotate(input, p[0], 128),
                _ => throw new InvalidDataException(name),
            };
            AssertSameBytes(Bytes(op.GetProperty("pixels")), result.Pixels, $"{name}({string.Join(", ", p)}) on {op.GetProperty("input")} [{op.GetProperty("source")}]");
            count++;
        }
        Assert.True(count >= 40, $"only {count} op cases");
    }
}
