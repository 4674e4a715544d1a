using SkiaSharp;

namespace Scst.Model.Data;

public enum MissingImagePolicy
{
    /// <summary>Fail, listing the missing or unreadable images.</summary>
    Error,
    /// <summary>Drop those images and report how many were dropped.</summary>
    Skip,
}

public sealed class MissingImagesException(string message, IReadOnlyList<string> paths) : Exception(message)
{
    public IReadOnlyList<string> Paths { get; } = paths;
}

public static class ImageFiles
{
    /// <summary>
    /// Checks that every image exists and, with <paramref name="checkHeaders"/>, that its header decodes as an
    /// image (cheap: pixels are not decoded). Returns the usable images and the paths of the ones left out.
    /// </summary>
    public static (IReadOnlyList<CaptionImage> Usable, IReadOnlyList<string> Bad) Check(
        IReadOnlyList<CaptionImage> images, MissingImagePolicy policy, bool checkHeaders = true, string? datasetName = null)
    {
        var ok = new bool[images.Count];
        Parallel.For(0, images.Count, i => ok[i] = IsReadable(images[i].ImagePath, checkHeaders));
        var bad = images.Where((_, i) => !ok[i]).Select(im => im.ImagePath).ToList();
        if (bad.Count > 0 && policy == MissingImagePolicy.Error)
        {
            const int shown = 10;
            var list = string.Join(Environment.NewLine, bad.Take(shown).Select(p => "  " + p));
            var more = bad.Count > shown ? $"{Environment.NewLine}  ... and {bad.Count - shown} more" : "";
            throw new MissingImagesException(
                $"{bad.Count} of {images.Count} images{(datasetName is null ? "" : $" of {datasetName}")} are missing or unreadable:{Environment.NewLine}{list}{more}{Environment.NewLine}" +
                "Fix the image root, or set the dataset's missing-image policy to skip.", bad);
        }
        return (images.Where((_, i) => ok[i]).ToList(), bad);
    }

    private static bool IsReadable(string path, bool checkHeader)
    {
        if (!File.Exists(path)) return false;
        if (!checkHeader) return true;
        using var codec = SKCodec.Create(path);
        return codec is not null && codec.Info.Width > 0 && codec.Info.Height > 0;
    }
}
