using System.Text.Json;
using SkiaSharp;

namespace Scst.Model.Data.Shapes;

public sealed record ShapesDatasetOptions(
    int Seed = 1234,
    int Train = 6000,
    int Val = 500,
    int Test = 1000,
    int ImageSize = 64,
    int CaptionsPerImage = 5);

public sealed record ShapesDatasetSummary(string DatasetJson, int Images, int Captions, int VocabularySize, int MaxCaptionWords);

/// <summary>
/// Writes the synthetic shapes captioning set in Karpathy's COCO format: <c>dataset_coco.json</c> (with an extra
/// <c>shapes</c> field per image describing the scene), <c>images/*.png</c>, and COCO-style ground truth for val and
/// test in <c>annotations/captions_{val,test}.json</c> for coco-caption compatible scoring.
/// </summary>
/// <remarks>
/// Everything is a function of (seed, split, index): each image has its own random stream, so a split's content
/// does not change when another split's size does, and rendering can run in parallel without changing a byte.
/// </remarks>
public static class ShapesDatasetWriter
{
    public const string DatasetFileName = "dataset_coco.json";

    public static ShapesDatasetSummary Write(string outDir, ShapesDatasetOptions options, IProgress<int>? progress = null)
    {
        if (options.Train < 0 || options.Val < 0 || options.Test < 0)
            throw new ArgumentOutOfRangeException(nameof(options), "split sizes must be non-negative.");
        if (options.ImageSize < 16)
            throw new ArgumentOutOfRangeException(nameof(options), options.ImageSize, "image size must be at least 16 pixels.");
        if (options.CaptionsPerImage < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.CaptionsPerImage, "need at least one caption per image.");

        var imageDir = Path.Combine(outDir, "images");
        Directory.CreateDirectory(imageDir);
        Directory.CreateDirectory(Path.Combine(outDir, "annotations"));

        var entries = new List<(string Split, string FileName, ShapesScene Scene, IReadOnlyList<string> Captions)>();
        foreach (var (split, count, splitIndex) in new[] { ("train", options.Train, 0), ("val", options.Val, 1), ("test", options.Test, 2) })
            for (var i = 0; i < count; i++)
            {
                var rng = new Random(ImageSeed(options.Seed, splitIndex, i));
                var scene = ShapesScene.Sample(rng, options.ImageSize);
                var captions = ShapesCaptioner.Describe(scene, rng, options.CaptionsPerImage);
                entries.Add((split, $"{split}_{i:D6}.png", scene, captions));
            }

        var done = 0;
        Parallel.For(0, entries.Count, i =>
        {
            File.WriteAllBytes(Path.Combine(imageDir, entries[i].FileName), ShapesRenderer.RenderPng(entries[i].Scene, options.ImageSize));
            progress?.Report(Interlocked.Increment(ref done));
        });

        var jsonPath = Path.Combine(outDir, DatasetFileName);
        var vocab = new HashSet<string>(StringComparer.Ordinal);
        var maxWords = 0;
        using (var stream = File.Create(jsonPath))
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteStartArray("images");
            var sentId = 0;
            for (var imgId = 0; imgId < entries.Count; imgId++)
            {
                var (split, fileName, scene, captions) = entries[imgId];
                w.WriteStartObject();
                w.WriteString("filepath", "images");
                w.WriteString("filename", fileName);
                w.WriteNumber("imgid", imgId);
                w.WriteNumber("cocoid", imgId);
                w.WriteString("split", split);
                w.WriteStartArray("sentids");
                for (var k = 0; k < captions.Count; k++) w.WriteNumberValue(sentId + k);
                w.WriteEndArray();
                w.WriteStartArray("sentences");
                foreach (var raw in captions)
                {
                    var tokens = Tokens(raw);
                    vocab.UnionWith(tokens);
                    maxWords = Math.Max(maxWords, tokens.Length);
                    w.WriteStartObject();
                    w.WriteStartArray("tokens");
                    foreach (var t in tokens) w.WriteStringValue(t);
                    w.WriteEndArray();
                    w.WriteString("raw", raw);
                    w.WriteNumber("imgid", imgId);
                    w.WriteNumber("sentid", sentId++);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartArray("shapes");
                foreach (var o in scene.Objects)
                {
                    w.WriteStartObject();
                    w.WriteString("kind", o.Kind.ToString().ToLowerInvariant());
                    w.WriteString("color", o.Color.Name);
                    w.WriteString("size", o.Size.ToString().ToLowerInvariant());
                    w.WriteNumber("row", o.Row);
                    w.WriteNumber("col", o.Col);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("dataset", "shapes");
            w.WriteNumber("seed", options.Seed);
            w.WriteNumber("image_size", options.ImageSize);
            w.WriteEndObject();
        }

        foreach (var split in new[] { "val", "test" })
            WriteCocoAnnotations(Path.Combine(outDir, "annotations", $"captions_{split}.json"),
                entries.Select((e, id) => (e, id)).Where(x => x.e.Split == split).Select(x => (x.id, x.e.FileName, x.e.Captions)));

        return new ShapesDatasetSummary(jsonPath, entries.Count, entries.Sum(e => e.Captions.Count), vocab.Count, maxWords);
    }

    /// <summary>coco-caption ground truth: <c>{"images": [{"id"}], "annotations": [{"image_id", "id", "caption"}]}</c>.</summary>
    private static void WriteCocoAnnotations(string path, IEnumerable<(int Id, string FileName, IReadOnlyList<string> Captions)> images)
    {
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream);
        var list = images.ToList();
        w.WriteStartObject();
        w.WriteString("type", "captions");
        w.WriteStartArray("images");
        foreach (var (id, fileName, _) in list)
        {
            w.WriteStartObject();
            w.WriteNumber("id", id);
            w.WriteString("file_name", fileName);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("annotations");
        var annId = 0;
        foreach (var (id, _, captions) in list)
            foreach (var c in captions)
            {
                w.WriteStartObject();
                w.WriteNumber("image_id", id);
                w.WriteNumber("id", annId++);
                w.WriteString("caption", c);
                w.WriteEndObject();
            }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static string[] Tokens(string raw) =>
        raw.Replace(",", " ").Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>SplitMix64 of (seed, split, index): independent, well-mixed streams per image.</summary>
    internal static int ImageSeed(int seed, int split, int index)
    {
        var z = unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ ((ulong)split << 40) ^ (ulong)(uint)index);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }
}

public static class ShapesRenderer
{
    public static byte[] RenderPng(ShapesScene scene, int imageSize)
    {
        using var surface = SKSurface.Create(new SKImageInfo(imageSize, imageSize, SKColorType.Rgba8888, SKAlphaType.Premul));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.Black);
        foreach (var o in scene.Objects)
        {
            using var paint = new SKPaint { Color = new SKColor(o.Color.R, o.Color.G, o.Color.B), IsAntialias = true, Style = SKPaintStyle.Fill };
            switch (o.Kind)
            {
                case ShapeKind.Circle:
                    canvas.DrawCircle(o.CenterX, o.CenterY, o.Radius, paint);
                    break;
                case ShapeKind.Square:
                    // Same area as the circle, so size is judged the same way for every kind.
                    var half = o.Radius * 0.886f;
                    canvas.DrawRect(o.CenterX - half, o.CenterY - half, 2 * half, 2 * half, paint);
                    break;
                case ShapeKind.Triangle:
                    using (var path = new SKPath())
                    {
                        // Equilateral, pointing up, scaled a little past the circle's radius to look as big.
                        var r = o.Radius * 1.15f;
                        path.MoveTo(o.CenterX, o.CenterY - r);
                        path.LineTo(o.CenterX + r * 0.866f, o.CenterY + r * 0.5f);
                        path.LineTo(o.CenterX - r * 0.866f, o.CenterY + r * 0.5f);
                        path.Close();
                        canvas.DrawPath(path, paint);
                    }
                    break;
            }
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
