using System.Text.RegularExpressions;

namespace Scst.Model.Data;

/// <summary>
/// LAVIS's <c>blip_caption</c> text processor: lowercase, the punctuation <c>. ! " ( ) * # : ; ~</c> becomes a space,
/// runs of whitespace collapse to one space, the caption is trimmed and truncated to <see cref="MaxWords"/> words,
/// and <see cref="Prompt"/> is prepended. Matching it keeps CE targets identical to the Python trainer's.
/// </summary>
public sealed partial class BlipCaptionProcessor(string prompt = "", int maxWords = 50)
{
    public string Prompt { get; } = prompt;
    public int MaxWords { get; } = maxWords > 0
        ? maxWords
        : throw new ArgumentOutOfRangeException(nameof(maxWords), maxWords, "max_words must be positive.");

    public string Process(string caption) => Prompt + PreCaption(caption);

    public string PreCaption(string caption)
    {
        var c = Punctuation().Replace(caption.ToLowerInvariant(), " ");
        c = Whitespace().Replace(c, " ");
        // Python: rstrip("\n") then strip(" ") — only those characters, not all whitespace.
        c = c.TrimEnd('\n').Trim(' ');
        var words = c.Split(' ');
        return words.Length > MaxWords ? string.Join(' ', words.Take(MaxWords)) : c;
    }

    [GeneratedRegex("([.!\"()*#:;~])")]
    private static partial Regex Punctuation();

    [GeneratedRegex(@"\s{2,}")]
    private static partial Regex Whitespace();
}
