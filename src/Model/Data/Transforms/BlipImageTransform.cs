namespace Scst.Model.Data.Transforms;

/// <summary>
/// A LAVIS image processor (<c>datasets.NAME.vis_processor.{train,eval}</c>): <c>name</c> is one of
/// <see cref="Names"/>; <c>min_scale</c>/<c>max_scale</c> bound RandomResizedCrop's area fraction (train processors);
/// <c>mean</c>/<c>std</c> are Normalize's (BLIP's CLIP statistics by default).
/// </summary>
public sealed record VisProcessorOptions(
    string Name,
    int ImageSize,
    double MinScale,
    double MaxScale,
    IReadOnlyList<double> Mean,
    IReadOnlyList<double> Std)
{
    public const string BlipImageTrain = "blip_image_train", BlipImageEval = "blip_image_eval", Blip2ImageTrain = "blip2_image_train";
    public static readonly string[] Names = [BlipImageTrain, BlipImageEval, Blip2ImageTrain];
    public static readonly double[] BlipMean = [0.48145466, 0.4578275, 0.40821073];
    public static readonly double[] BlipStd = [0.26862954, 0.26130258, 0.27577711];

    /// <summary>LAVIS's defaults where a value is not given: scale (0.5, 1.0), BLIP's CLIP mean/std.</summary>
    public static VisProcessorOptions Create(string name = BlipImageEval, int imageSize = 224, double minScale = 0.5, double maxScale = 1.0,
        IReadOnlyList<double>? mean = null, IReadOnlyList<double>? std = null) =>
        new(name, imageSize, minScale, maxScale, mean ?? BlipMean, std ?? BlipStd);

    /// <summary>Whether the transform draws random numbers (crop, flip, RandomAugment); the eval transform does not.</summary>
    public static bool IsRandom(string name) => name != BlipImageEval;
}

/// <summary>A crop box as torchvision's <c>RandomResizedCrop.get_params</c> returns it: (top, left, height, width).</summary>
public readonly record struct CropBox(int Top, int Left, int Height, int Width);

/// <summary>
/// LAVIS's BLIP image processors on an 8-bit RGB image, ending in torchvision's ToTensor + Normalize (CHW float32):
/// <list type="bullet">
/// <item><c>blip_image_eval</c>: <c>Resize((S, S), BICUBIC)</c>.</item>
/// <item><c>blip2_image_train</c>: <c>RandomResizedCrop(S, scale=(min_scale, max_scale), BICUBIC)</c>, <c>RandomHorizontalFlip()</c>.</item>
/// <item><c>blip_image_train</c>: the same, then <c>RandomAugment(2, 5, isPIL=True, augs=[Identity, AutoContrast,
/// Brightness, Sharpness, Equalize, ShearX, ShearY, TranslateX, TranslateY, Rotate])</c>.</item>
/// </list>
/// Resizing is PIL's antialiased bicubic (<see cref="PilResample"/>); random draws come from <see cref="ImageDraws"/>.
/// </summary>
public sealed class BlipImageTransform
{
    /// <summary>RandomAugment's N (ops per image) and M (magnitude on LAVIS's 0..10 scale), fixed in BlipImageTrainProcessor.</summary>
    public const int AugmentOpsPerImage = 2, AugmentLevel = 5;
    private const double MaxLevel = 10, ApplyProbability = 0.5;
    private const byte Fill = 128; // LAVIS's replace_value (128, 128, 128)

    public static readonly string[] AugmentNames =
        ["Identity", "AutoContrast", "Brightness", "Sharpness", "Equalize", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"];

    private static readonly double LogRatioMin = Math.Log(3.0 / 4.0), LogRatioMax = Math.Log(4.0 / 3.0);

    public BlipImageTransform(VisProcessorOptions options)
    {
        if (!VisProcessorOptions.Names.Contains(options.Name))
            throw new ArgumentException($"unknown image processor '{options.Name}' (expected {string.Join(" | ", VisProcessorOptions.Names)}).", nameof(options));
        if (options.ImageSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), $"image_size {options.ImageSize} must be positive.");
        if (!(options.MinScale > 0 && options.MinScale <= options.MaxScale && options.MaxScale <= 1))
            throw new ArgumentOutOfRangeException(nameof(options), $"need 0 < min_scale ({options.MinScale}) <= max_scale ({options.MaxScale}) <= 1.");
        if (options.Mean.Count != 3 || options.Std.Count != 3 || options.Std.Any(s => !(s > 0)))
            throw new ArgumentException("mean and std need 3 values each, std > 0.", nameof(options));
        Options = options;
    }

    public VisProcessorOptions Options { get; }
    public int ImageSize => Options.ImageSize;

    /// <summary>The transformed image as CHW float32 of length 3·S·S; <paramref name="draws"/> is required by the train processors.</summary>
    public float[] Apply(RgbImage image, ImageDraws? draws) =>
        Pixels(image, draws).ToNormalizedChw(Options.Mean, Options.Std);

    /// <summary>The transformed image before ToTensor/Normalize.</summary>
    public RgbImage Pixels(RgbImage image, ImageDraws? draws)
    {
        var s = Options.ImageSize;
        if (!VisProcessorOptions.IsRandom(Options.Name)) return PilResample.ResizeBicubic(image, s, s);
        if (draws is null) throw new ArgumentNullException(nameof(draws), $"the {Options.Name} transform needs its random draws (seed, epoch, image).");
        var box = SampleCrop(image.Width, image.Height, Options.MinScale, Options.MaxScale, draws);
        var result = PilResample.ResizeBicubic(image.Crop(box.Top, box.Left, box.Height, box.Width), s, s);
        if (draws.NextDouble() < 0.5) result = result.FlipHorizontal();
        if (Options.Name == VisProcessorOptions.BlipImageTrain) result = RandomAugment(result, draws);
        return result;
    }

    /// <summary>
    /// torchvision's <c>RandomResizedCrop.get_params</c> with ratio (3/4, 4/3): up to 10 tries of an area fraction
    /// uniform in [minScale, maxScale] and a log-uniform aspect ratio, keeping the first box that fits; otherwise the
    /// centre crop clamped to the ratio range.
    /// </summary>
    public static CropBox SampleCrop(int width, int height, double minScale, double maxScale, ImageDraws draws)
    {
        double area = (double)height * width;
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var targetArea = area * draws.Uniform(minScale, maxScale);
            var aspect = Math.Exp(draws.Uniform(LogRatioMin, LogRatioMax));
            // Python's round() is half-to-even.
            var w = (int)Math.Round(Math.Sqrt(targetArea * aspect), MidpointRounding.ToEven);
            var h = (int)Math.Round(Math.Sqrt(targetArea / aspect), MidpointRounding.ToEven);
            if (0 < w && w <= width && 0 < h && h <= height)
            {
                var top = draws.NextInt(height - h + 1);
                var left = draws.NextInt(width - w + 1);
                return new CropBox(top, left, h, w);
            }
        }
        var inRatio = (double)width / height;
        int cw, ch;
        if (inRatio < 3.0 / 4.0) { cw = width; ch = (int)Math.Round(cw / (3.0 / 4.0), MidpointRounding.ToEven); }
        else if (inRatio > 4.0 / 3.0) { ch = height; cw = (int)Math.Round(ch * (4.0 / 3.0), MidpointRounding.ToEven); }
        else { cw = width; ch = height; }
        return new CropBox((height - ch) / 2, (width - cw) / 2, ch, cw);
    }

    /// <summary>
    /// LAVIS's <c>RandomAugment(2, 5)</c>: two ops drawn with replacement, each applied with probability 0.5 at level 5:
    /// enhancement factor 5/10·1.8 + 0.1 = 1.0, shear 0.15, translate 5 px, rotate 15°, each sign drawn 50/50; fill 128.
    /// </summary>
    public static RgbImage RandomAugment(RgbImage image, ImageDraws draws)
    {
        var ops = new string[AugmentOpsPerImage];
        for (var i = 0; i < ops.Length; i++) ops[i] = AugmentNames[draws.NextInt(AugmentNames.Length)];
        foreach (var op in ops)
        {
            if (draws.NextDouble() > ApplyProbability) continue;
            image = ApplyOp(image, op, AugmentLevel, draws);
        }
        return image;
    }

    /// <summary>One RandomAugment op at <paramref name="level"/> (LAVIS's arg_dict), drawing the sign where LAVIS does.</summary>
    public static RgbImage ApplyOp(RgbImage image, string op, int level, ImageDraws draws)
    {
        double Signed(double v, bool negativeAbove) =>
            negativeAbove ? (draws.NextDouble() > 0.5 ? -v : v) : (draws.NextDouble() < 0.5 ? -v : v);
        var enhance = level / MaxLevel * 1.8 + 0.1;
        return op switch
        {
            "Identity" => image,
            "AutoContrast" => AugmentOps.AutoContrast(image),
            "Equalize" => AugmentOps.Equalize(image),
            "Brightness" => AugmentOps.Brightness(image, enhance),
            "Sharpness" => AugmentOps.Sharpness(image, enhance),
            "ShearX" => AugmentOps.ShearX(image, Signed(level / MaxLevel * 0.3, true), Fill),
            "ShearY" => AugmentOps.ShearY(image, Signed(level / MaxLevel * 0.3, true), Fill),
            "TranslateX" => AugmentOps.TranslateX(image, Signed(level / MaxLevel * 10, true), Fill),
            "TranslateY" => AugmentOps.TranslateY(image, Signed(level / MaxLevel * 10, true), Fill),
            "Rotate" => AugmentOps.Rotate(image, Signed(level / MaxLevel * 30, false), Fill),
            _ => throw new ArgumentException($"unknown RandomAugment op '{op}'.", nameof(op)),
        };
    }
}
