namespace Scst.Model.Data;

/// <summary>One image with all of its reference captions, whatever file format it came from.</summary>
/// <param name="ImageId">Stable id: the COCO id where the format has one, otherwise the file name stem.</param>
/// <param name="ImagePath">Full path of the image file (not checked here; see <see cref="ImageFiles"/>).</param>
/// <param name="Captions">Raw reference captions, as written in the dataset file.</param>
/// <param name="Split">"train", "val" or "test" (Karpathy's "restval" is reported as "train").</param>
public sealed record CaptionImage(string ImageId, string ImagePath, IReadOnlyList<string> Captions, string Split);

/// <summary>A dataset file that cannot be read as the format it claims to be.</summary>
public sealed class DatasetFormatException(string message, Exception? inner = null) : Exception(message, inner);
