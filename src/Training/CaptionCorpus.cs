using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;
using Scst.Model.Data;
using Scst.Model.Data.Shapes;
using Scst.Model.Data.Transforms;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>
/// One split of captioned images. <see cref="Pixels"/> runs the eval transform (cached in memory when it fits);
/// <see cref="TrainPixels"/> runs the train transform, drawn afresh for each (run seed, epoch, image).
/// </summary>
public sealed class CaptionSplit
{
    private const long CacheLimitBytes = 2L << 30;
    private readonly ImagePreprocessor _pre;
    private readonly ImagePreprocessor? _train;
    private readonly long _seed;
    private readonly float[]?[]? _cache;
    private readonly ParallelOptions _decode;

    /// <param name="workers">run.num_workers: images decoded at once (null: one per core; 0 or 1: one at a time).</param>
    /// <param name="train">the train transform CE batches go through (null: the eval one); <paramref name="seed"/> keys its draws.</param>
    public CaptionSplit(string name, IReadOnlyList<CaptionImage> images, ImagePreprocessor pre, BlipCaptionProcessor text, int? workers = null,
        ImagePreprocessor? train = null, long seed = 0)
    {
        _decode = new ParallelOptions { MaxDegreeOfParallelism = workers is int w ? Math.Max(1, w) : -1 };
        Name = name;
        Images = images;
        _pre = pre;
        if (train is not null && train.ImageSize != pre.ImageSize)
            throw new ArgumentException($"train image size {train.ImageSize} differs from eval image size {pre.ImageSize}.", nameof(train));
        // A train processor equal to the eval one draws nothing: its pixels are the cached eval pixels.
        _train = train is null || train.Options == pre.Options || SameEval(train.Options, pre.Options) ? null : train;
        _seed = seed;
        References = images.Select(i => (IReadOnlyList<string>)i.Captions.Select(text.PreCaption).Where(c => c.Length > 0).ToArray()).ToArray();
        var bytes = (long)images.Count * 3 * pre.ImageSize * pre.ImageSize * sizeof(float);
        if (bytes <= CacheLimitBytes) _cache = new float[images.Count][];
    }

    private static bool SameEval(VisProcessorOptions a, VisProcessorOptions b) =>
        a.Name == b.Name && !VisProcessorOptions.IsRandom(a.Name) && a.ImageSize == b.ImageSize && a.Mean.SequenceEqual(b.Mean) && a.Std.SequenceEqual(b.Std);

    public string Name { get; }
    public IReadOnlyList<CaptionImage> Images { get; }
    public int Count => Images.Count;

    /// <summary>The processor CE batches go through: the eval one when the train processor adds nothing to it.</summary>
    public VisProcessorOptions TrainProcessor => (_train ?? _pre).Options;

    /// <summary>Captions after LAVIS's blip_caption processing (lowercase, punctuation stripped, max_words).</summary>
    public IReadOnlyList<IReadOnlyList<string>> References { get; }

    /// <summary>Eval-transform pixels [B, 3, S, S] of the images at <paramref name="indices"/>, decoded in parallel on first use.</summary>
    public Tensor Pixels(IReadOnlyList<int> indices, Device device)
    {
        var plane = 3 * _pre.ImageSize * _pre.ImageSize;
        var data = new float[indices.Count * plane];
        Parallel.For(0, indices.Count, _decode, k =>
        {
            var i = indices[k];
            var px = _cache?[i] ?? _pre.Load(Images[i].ImagePath);
            if (_cache is not null) _cache[i] = px;
            px.CopyTo(data, k * plane);
        });
        return ToTensor(data, indices.Count, device);
    }

    /// <summary>
    /// Train-transform pixels [B, 3, S, S] for CE: each image's random crop, flip and augmentation are a function of
    /// (run seed, <paramref name="epoch"/>, draw key) only, so a resumed run sees the same pixels. The draw key is the
    /// image index unless <paramref name="drawKeys"/> gives one per row (e.g. a caption-sample index).
    /// </summary>
    public Tensor TrainPixels(IReadOnlyList<int> indices, int epoch, Device device, IReadOnlyList<long>? drawKeys = null)
    {
        if (_train is null) return Pixels(indices, device);
        if (drawKeys is not null && drawKeys.Count != indices.Count)
            throw new ArgumentException($"{drawKeys.Count} draw keys for {indices.Count} images.", nameof(drawKeys));
        var plane = 3 * _train.ImageSize * _train.ImageSize;
        var data = new float[indices.Count * plane];
        Parallel.For(0, indices.Count, _decode, k =>
        {
            var i = indices[k];
            _train.Load(Images[i].ImagePath, new ImageDraws(_seed, epoch, drawKeys?[k] ?? i)).CopyTo(data, k * plane);
        });
        return ToTensor(data, indices.Count, device);
    }

    private Tensor ToTensor(float[] data, int count, Device device)
    {
        var t = tensor(data, [count, 3, _pre.ImageSize, _pre.ImageSize]);
        return device.type == TorchSharp.DeviceType.CPU ? t : t.to(device);
    }
}

/// <summary>The train / validation / test splits named by the run config, drawn from the configured datasets.</summary>
public sealed class CaptionCorpus
{
    public required CaptionSplit Train { get; init; }
    public required CaptionSplit Val { get; init; }
    public required CaptionSplit Test { get; init; }
    public required BlipCaptionProcessor TextProcessor { get; init; }
    public required int ImageSize { get; init; }
    public int SkippedImages { get; init; }

    public static CaptionCorpus Load(ScstConfig config, ILogger log)
    {
        var all = new List<CaptionImage>();
        var skipped = 0;
        DatasetOptions? first = null;
        foreach (var d in config.Datasets.Values)
        {
            first ??= d;
            var images = LoadDataset(d, log);
            var policy = d.MissingImages == "skip" ? MissingImagePolicy.Skip : MissingImagePolicy.Error;
            var (usable, bad) = ImageFiles.Check(images, policy, checkHeaders: false, datasetName: d.Name);
            if (bad.Count > 0) log.LogWarning("{Dataset}: skipped {Count} missing or unreadable images", d.Name, bad.Count);
            skipped += bad.Count;
            all.AddRange(usable);
        }
        var ds = first!;
        // The first dataset's processors serve every split (the model has one input size).
        var pre = new ImagePreprocessor(ds.EvalVisProcessor ?? VisProcessorOptions.Create(VisProcessorOptions.BlipImageEval, ds.ImageSize));
        var train = ds.TrainVisProcessor is null ? null : new ImagePreprocessor(ds.TrainVisProcessor);
        var text = new BlipCaptionProcessor("", ds.MaxWords);
        CaptionSplit Split(string name, IReadOnlyList<string> splits)
        {
            // Karpathy's "restval" is training data.
            var wanted = new HashSet<string>(splits.SelectMany(s => s == "train" ? new[] { "train", "restval" } : [s]));
            var items = all.Where(i => wanted.Contains(i.Split)).ToList();
            if (items.Count == 0)
                throw new InvalidDataException(
                    $"the {name} split ({string.Join(", ", splits)}) has no images in datasets {string.Join(", ", config.Datasets.Keys)}; " +
                    $"splits present: {string.Join(", ", all.Select(i => i.Split).Distinct())}");
            // Only the training split is augmented; validation and test always use the eval transform.
            return new CaptionSplit(name, items, pre, text, config.Run.NumWorkers, name == "train" ? train : null, config.Run.Seed);
        }
        return new CaptionCorpus
        {
            Train = Split("train", config.Run.TrainSplits),
            Val = Split("val", config.Run.ValidSplits),
            Test = Split("test", config.Run.TestSplits),
            TextProcessor = text,
            ImageSize = ds.ImageSize,
            SkippedImages = skipped,
        };
    }

    private static IReadOnlyList<CaptionImage> LoadDataset(DatasetOptions d, ILogger log)
    {
        switch (d.Format)
        {
            case "shapes":
            {
                var dir = d.Images!;
                var json = Path.Combine(dir, ShapesDatasetWriter.DatasetFileName);
                if (!File.Exists(json))
                {
                    var s = d.Shapes ?? new ShapesOptions(1234, 6000, 500, 1000);
                    log.LogInformation("Generating the shapes dataset in {Dir} (seed {Seed}, {Train}/{Val}/{Test} images)", dir, s.Seed, s.Train, s.Val, s.Test);
                    ShapesDatasetWriter.Write(dir, new ShapesDatasetOptions(s.Seed, s.Train, s.Val, s.Test, d.ImageSize));
                }
                return CaptionDatasets.LoadKarpathy(json, dir);
            }
            case "karpathy":
                return CaptionDatasets.LoadKarpathy(d.Annotations!, d.Images);
            case "lavis":
            {
                // LAVIS keeps one file per split: coco_karpathy_{train,val,test}.json in the annotations folder.
                var dir = d.Annotations!;
                var result = new List<CaptionImage>();
                foreach (var split in CaptionDatasets.Splits)
                {
                    var file = Path.Combine(dir, $"coco_karpathy_{split}.json");
                    if (File.Exists(file)) result.AddRange(CaptionDatasets.LoadLavisKarpathy(file, split, d.Images ?? dir));
                }
                if (result.Count == 0) throw new FileNotFoundException($"datasets.{d.Name}: no coco_karpathy_{{train,val,test}}.json in '{dir}'");
                return result;
            }
            case "flickr":
            {
                var tokenFile = d.Annotations!;
                var dir = Path.GetDirectoryName(Path.GetFullPath(tokenFile))!;
                var flavour = File.Exists(Path.Combine(dir, "Flickr_8k.trainImages.txt")) ? "Flickr_8k" : "Flickr_30k";
                var splits = new Dictionary<string, string>
                {
                    ["train"] = Path.Combine(dir, $"{flavour}.trainImages.txt"),
                    ["val"] = Path.Combine(dir, $"{flavour}.devImages.txt"),
                    ["test"] = Path.Combine(dir, $"{flavour}.testImages.txt"),
                };
                return CaptionDatasets.LoadFlickr(tokenFile, d.Images ?? dir, splits);
            }
            default:
                throw new InvalidDataException($"datasets.{d.Name}: unknown format '{d.Format}'");
        }
    }
}
