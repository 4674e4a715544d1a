using SkiaSharp;

namespace Scst.Model.Tests;

/// <summary>A temporary folder with helpers to write small datasets and images into it.</summary>
internal sealed class DataTestFiles : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("scst-data-").FullName;

    public string Write(string relative, string content)
    {
        var path = Path.Combine(Dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>A solid-colour PNG.</summary>
    public string Png(string relative, int width, int height, SKColor color)
    {
        var path = Path.Combine(Dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bmp = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        bmp.Erase(color);
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
