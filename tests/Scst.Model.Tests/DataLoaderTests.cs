using Scst.Model.Data;
using SkiaSharp;

namespace Scst.Model.Tests;

public class DataLoaderTests
{
    private const string Karpathy = """
        {"images": [
          {"filepath": "val2014", "filename": "COCO_val2014_000000000042.jpg", "imgid": 0, "cocoid": 42, "split": "test",
           "sentences": [{"raw": "A man riding a horse.", "tokens": []}, {"raw": "A person on a horse", "tokens": []}]},
          {"filepath": "train2014", "filename": "a.jpg", "imgid": 1, "cocoid": 7, "split": "restval",
           "sentences": [{"raw": "Two dogs."}]},
          {"filepath": "train2014", "filename": "b.jpg", "imgid": 2, "split": "train", "sentences": [{"raw": "A cat."}]},
          {"filename": "c.jpg", "split": "val", "sentences": [{"raw": "A bus."}]}
        ], "dataset": "coco"}
        """;

    [Fact]
    public void Karpathy_reads_splits_ids_paths_and_counts_restval_as_train()
    {
        using var f = new DataTestFiles();
        var json = f.Write("dataset_coco.json", Karpathy);
        var all = CaptionDatasets.LoadKarpathy(json, imageRoot: "/imgs");
        Assert.Equal(4, all.Count);
        Assert.Equal(("42", "/imgs/val2014/COCO_val2014_000000000042.jpg", "test"), (all[0].ImageId, all[0].ImagePath, all[0].Split));
        Assert.Equal(["A man riding a horse.", "A person on a horse"], all[0].Captions);
        Assert.Equal(("7", "train"), (all[1].ImageId, all[1].Split));
        Assert.Equal(("2", "train"), (all[2].ImageId, all[2].Split)); // imgid when there is no cocoid
        Assert.Equal(("c", "/imgs/c.jpg", "val"), (all[3].ImageId, all[3].ImagePath, all[3].Split));
        Assert.Equal(2, CaptionDatasets.LoadKarpathy(json, "/imgs", onlySplit: "train").Count);
        // Without an image root, paths are relative to the JSON's folder.
        Assert.Equal(Path.Combine(f.Dir, "train2014", "a.jpg"), CaptionDatasets.LoadKarpathy(json)[1].ImagePath);
    }

    [Fact]
    public void Lavis_train_groups_captions_per_image_and_val_takes_lists()
    {
        using var f = new DataTestFiles();
        var train = f.Write("coco_karpathy_train.json", """
            [{"image": "train2014/COCO_train2014_000000000009.jpg", "caption": "a plate of food", "image_id": "coco_9"},
             {"image": "train2014/COCO_train2014_000000000025.jpg", "caption": "a giraffe", "image_id": "coco_25"},
             {"image": "train2014/COCO_train2014_000000000009.jpg", "caption": "food on a plate", "image_id": "coco_9"}]
            """);
        var items = CaptionDatasets.LoadLavisKarpathy(train, "train", "/coco");
        Assert.Equal(2, items.Count);
        Assert.Equal("coco_9", items[0].ImageId);
        Assert.Equal(["a plate of food", "food on a plate"], items[0].Captions);
        Assert.Equal("/coco/train2014/COCO_train2014_000000000009.jpg", items[0].ImagePath);

        var val = f.Write("coco_karpathy_val.json", """
            [{"image": "val2014/COCO_val2014_000000184613.jpg", "caption": ["a boy", "a child"]}]
            """);
        var v = Assert.Single(CaptionDatasets.LoadLavisKarpathy(val, "val", "/coco"));
        Assert.Equal(("184613", "val", 2), (v.ImageId, v.Split, v.Captions.Count));
    }

    [Fact]
    public void Flickr_token_file_with_split_lists()
    {
        using var f = new DataTestFiles();
        var tokens = f.Write("Flickr8k.token.txt",
            "1000.jpg#0\tA child in pink .\n1000.jpg#1\tA girl going into a building .\n1001.jpg#0\tA black dog .\n1002.jpg#0\tNot in any split .\n");
        var trainList = f.Write("Flickr_8k.trainImages.txt", "1000.jpg\n");
        var devList = f.Write("Flickr_8k.devImages.txt", "1001.jpg\n\n");
        var items = CaptionDatasets.LoadFlickr(tokens, "/flickr/Images", new Dictionary<string, string> { ["train"] = trainList, ["val"] = devList });
        Assert.Equal(2, items.Count);
        Assert.Equal(new[] { "A child in pink .", "A girl going into a building ." }, items[0].Captions);
        Assert.Equal(("1000", "/flickr/Images/1000.jpg", "train"), (items[0].ImageId, items[0].ImagePath, items[0].Split));
        Assert.Equal("val", items[1].Split);
    }

    [Theory]
    [InlineData("{\"images\": [", "not valid JSON")]
    [InlineData("{\"pictures\": []}", "$ is missing key 'images'")]
    [InlineData("{\"images\": {}}", "$.images should be an array")]
    [InlineData("{\"images\": [{\"filename\": \"a.jpg\", \"split\": \"train\"}]}", "images[0] is missing key 'sentences'")]
    [InlineData("{\"images\": [{\"filename\": \"a.jpg\", \"split\": \"train\", \"sentences\": [{\"raw\": 5}]}]}", "images[0].sentences[0].raw should be a string, but is number")]
    [InlineData("{\"images\": [{\"filename\": \"a.jpg\", \"split\": \"dev\", \"sentences\": [{\"raw\": \"x\"}]}]}", "images[0].split is 'dev'")]
    [InlineData("{\"images\": [{\"filename\": \"a.jpg\", \"split\": \"val\", \"sentences\": []}]}", "images[0] ('a.jpg') has no sentences")]
    public void Karpathy_bad_files_name_file_and_entry(string content, string expected)
    {
        using var f = new DataTestFiles();
        var path = f.Write("bad.json", content);
        var e = Assert.Throws<DatasetFormatException>(() => CaptionDatasets.LoadKarpathy(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("{}", "$ should be an array")]
    [InlineData("[{\"caption\": \"x\"}]", "[0] is missing key 'image'")]
    [InlineData("[{\"image\": \"a.jpg\", \"caption\": \"x\"}, {\"image\": \"b.jpg\"}]", "[1] is missing key 'caption'")]
    [InlineData("[{\"image\": \"a.jpg\", \"caption\": 3}]", "[0].caption should be a string or array of strings")]
    [InlineData("[{\"image\": \"a.jpg\", \"caption\": [\"ok\", null]}]", "[0].caption[1] should be a string, but is null")]
    public void Lavis_bad_files_name_file_and_entry(string content, string expected)
    {
        using var f = new DataTestFiles();
        var path = f.Write("coco_karpathy_val.json", content);
        var e = Assert.Throws<DatasetFormatException>(() => CaptionDatasets.LoadLavisKarpathy(path, "val", f.Dir));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Flickr_malformed_line_names_file_and_line()
    {
        using var f = new DataTestFiles();
        var tokens = f.Write("t.txt", "1000.jpg#0\tok\n1000.jpg no tab here\n");
        var split = f.Write("s.txt", "1000.jpg\n");
        var e = Assert.Throws<DatasetFormatException>(() =>
            CaptionDatasets.LoadFlickr(tokens, f.Dir, new Dictionary<string, string> { ["train"] = split }));
        Assert.Contains($"{tokens}:2", e.Message);
    }

    [Fact]
    public void Missing_and_unreadable_images_are_listed_or_skipped()
    {
        using var f = new DataTestFiles();
        var good = f.Png("img/good.png", 4, 4, SKColors.Red);
        var notImage = f.Write("img/text.png", "this is not a png");
        var images = new List<CaptionImage> { new("0", good, ["x"], "train"), new("1", notImage, ["x"], "train") };
        for (var i = 0; i < 12; i++) images.Add(new CaptionImage($"m{i}", Path.Combine(f.Dir, $"img/missing{i}.png"), ["x"], "train"));

        var e = Assert.Throws<MissingImagesException>(() => ImageFiles.Check(images, MissingImagePolicy.Error, datasetName: "toy"));
        Assert.Equal(13, e.Paths.Count);
        Assert.Contains("13 of 14 images of toy", e.Message);
        Assert.Contains(notImage, e.Message);
        Assert.Contains("missing8.png", e.Message);    // the first ten are listed
        Assert.DoesNotContain("missing9.png", e.Message);
        Assert.Contains("and 3 more", e.Message);

        var (usable, bad) = ImageFiles.Check(images, MissingImagePolicy.Skip);
        Assert.Equal(good, Assert.Single(usable).ImagePath);
        Assert.Equal(13, bad.Count);

        // Without header checks only existence counts.
        Assert.Equal(2, ImageFiles.Check(images, MissingImagePolicy.Skip, checkHeaders: false).Usable.Count);
    }
}
