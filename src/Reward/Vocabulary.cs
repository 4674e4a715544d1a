namespace Scst.Reward;

/// <summary>
/// Interns words to dense int ids, the id space every metric works in. Adding is single-threaded;
/// once <see cref="Freeze"/> has been called, lookups are safe from any number of threads.
/// </summary>
public sealed class Vocabulary
{
    private readonly List<string> _words = new();
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _spanIds;

    public Vocabulary() => _spanIds = _ids.GetAlternateLookup<ReadOnlySpan<char>>();

    public Vocabulary(IEnumerable<string> words) : this()
    {
        foreach (var w in words)
            if (!_ids.ContainsKey(w)) { _ids.Add(w, _words.Count); _words.Add(w); }
            else throw new ArgumentException($"duplicate word '{w}' in vocabulary", nameof(words));
    }

    public bool IsFrozen { get; private set; }
    public int Count => _words.Count;
    public IReadOnlyList<string> Words => _words;
    public string this[int id] => _words[id];

    public Vocabulary Freeze() { IsFrozen = true; return this; }

    public int GetOrAdd(ReadOnlySpan<char> word)
    {
        if (_spanIds.TryGetValue(word, out int id)) return id;
        if (IsFrozen) throw new InvalidOperationException($"vocabulary is frozen; cannot add '{word}'");
        id = _words.Count;
        var s = word.ToString();
        _words.Add(s);
        _ids.Add(s, id);
        return id;
    }

    public bool TryGetId(ReadOnlySpan<char> word, out int id) => _spanIds.TryGetValue(word, out id);

    /// <summary>Python's <c>str.split()</c>: runs of whitespace separate words, no empty words.</summary>
    public int[] EncodeWhitespace(string text) => EncodeWhitespace(text, GetOrAdd);

    internal static int[] EncodeWhitespace(string text, Func<ReadOnlySpan<char>, int> map)
    {
        Span<int> buf = text.Length <= 256 ? stackalloc int[text.Length / 2 + 1] : new int[text.Length / 2 + 1];
        int n = 0, i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && IsPythonSpace(text[i])) i++;
            int start = i;
            while (i < text.Length && !IsPythonSpace(text[i])) i++;
            if (i > start) buf[n++] = map(text.AsSpan(start, i - start));
        }
        return buf[..n].ToArray();
    }

    /// <summary>Python's <c>str.split(" ")</c> (what pycocoevalcap's ROUGE-L uses): every single space separates, so "" is one empty word.</summary>
    public int[] EncodeSingleSpace(string text)
    {
        int count = 1;
        foreach (char ch in text) if (ch == ' ') count++;
        var ids = new int[count];
        int n = 0, start = 0;
        for (int i = 0; i <= text.Length; i++)
        {
            if (i == text.Length || text[i] == ' ')
            {
                ids[n++] = GetOrAdd(text.AsSpan(start, i - start));
                start = i + 1;
            }
        }
        return ids;
    }

    /// <summary>Whitespace as CPython's <c>str.isspace</c> sees it (includes U+001C..U+001F, which .NET does not).</summary>
    public static bool IsPythonSpace(char c) => char.IsWhiteSpace(c) || (c >= '\u001C' && c <= '\u001F');
}
