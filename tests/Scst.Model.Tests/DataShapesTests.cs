using System.Text.Json;
using Scst.Model.Data;
using Scst.Model.Data.Shapes;

namespace Scst.Model.Tests;

public class DataShapesTests
{
    private static readonly ShapesDatasetOptions Small = new(Seed: 7, Train: 60, Val: 20, Test: 30, ImageSize: 32);

    [Fact]
    public void Same_seed_gives_identical_files_and_other_seed_does_not()
    {
        using var a = new DataTestFiles();
        using var b = new DataTestFiles();
        using var c = new DataTestFiles();
        ShapesDatasetWriter.Write(a.Dir, Small);
        ShapesDatasetWriter.Write(b.Dir, Small);
        ShapesDatasetWriter.Write(c.Dir, Small with { Seed = 8 });
        var json = (string d) => File.ReadAllBytes(Path.Combine(d, "dataset_coco.json"));
        Assert.Equal(json(a.Dir), json(b.Dir));
        Assert.NotEqual(json(a.Dir), json(c.Dir));
        Assert.Equal(File.ReadAllBytes(Path.Combine(a.Dir, "images", "test_000003.png")),
                     File.ReadAllBytes(Path.Combine(b.Dir, "images", "test_000003.png")));
    }

    [Fact]
    public void Test_split_does_not_depend_on_train_size()
    {
        using var a = new DataTestFiles();
        using var b = new DataTestFiles();
        ShapesDatasetWriter.Write(a.Dir, Small);
        ShapesDatasetWriter.Write(b.Dir, Small with { Train = 5 });
        var test = (string d) => CaptionDatasets.LoadKarpathy(Path.Combine(d, "dataset_coco.json"), onlySplit: "test")
            .Select(x => string.Join("|", x.Captions)).ToList();
        Assert.Equal(test(a.Dir), test(b.Dir));
    }

    [Fact]
    public void Output_loads_as_karpathy_with_readable_images_and_coco_annotations()
    {
        using var f = new DataTestFiles();
        var summary = ShapesDatasetWriter.Write(f.Dir, Small);
        var all = CaptionDatasets.LoadKarpathy(summary.DatasetJson);
        Assert.Equal(110, all.Count);
        Assert.Equal((60, 20, 30), (all.Count(x => x.Split == "train"), all.Count(x => x.Split == "val"), all.Count(x => x.Split == "test")));
        Assert.All(all, x => Assert.Equal(5, x.Captions.Count));
        Assert.Empty(ImageFiles.Check(all, MissingImagePolicy.Error).Bad);
        var x0 = new ImagePreprocessor(32).Load(all[0].ImagePath);
        Assert.Equal(3 * 32 * 32, x0.Length);

        using var coco = JsonDocument.Parse(File.ReadAllText(Path.Combine(f.Dir, "annotations", "captions_test.json")));
        Assert.Equal(30, coco.RootElement.GetProperty("images").GetArrayLength());
        Assert.Equal(150, coco.RootElement.GetProperty("annotations").GetArrayLength());
    }

    /// <summary>
    /// The statistics the SCST-over-CE demo relies on: a small vocabulary, short captions, references that
    /// disagree (rarely five identical captions) and optional details mentioned in roughly 30–45 % of captions.
    /// </summary>
    [Fact]
    public void Captions_are_short_varied_and_mention_details_sometimes()
    {
        var rng = new Random(3);
        var vocab = new HashSet<string>();
        int single = 0, sizeMentioned = 0, posMentioned = 0, allFiveEqual = 0, images = 2000;
        string[] sizeWords = ["small", "little", "tiny", "large", "big", "huge"];
        string[] posWords = ["top", "bottom", "upper", "lower", "left", "right", "center", "middle"];
        for (var i = 0; i < images; i++)
        {
            var scene = ShapesScene.Sample(rng, 64);
            var caps = ShapesCaptioner.Describe(scene, rng);
            Assert.Equal(5, caps.Count);
            if (caps.Distinct().Count() == 1) allFiveEqual++;
            foreach (var c in caps)
            {
                var words = c.Replace(",", "").Split(' ');
                Assert.InRange(words.Length, 2, ShapesCaptioner.MaxWords);
                vocab.UnionWith(words);
                if (scene.Objects.Count != 1) continue;
                // A single shape's kind and colour are always named; size and position are optional details.
                Assert.Contains(scene.Objects[0].Color.Name, c);
                single++;
                if (words.Intersect(sizeWords).Any()) sizeMentioned++;
                if (words.Intersect(posWords).Any()) posMentioned++;
            }
        }
        Assert.InRange(vocab.Count, 30, 150);
        Assert.InRange(sizeMentioned / (double)single, 0.35, 0.45);
        Assert.InRange(posMentioned / (double)single, 0.35, 0.45);
        Assert.True(allFiveEqual < images / 20, $"{allFiveEqual} of {images} images have five identical captions");
    }
}
