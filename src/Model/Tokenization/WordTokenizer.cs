using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Scst.Model.Tokenization;

/// <summary>
/// A word-level vocabulary built from a caption corpus, for small models and the built-in demo. Text is
/// lowercased, punctuation (except the apostrophe, so clitics stay with their word) becomes a space, and words are
/// split on whitespace — the words the CIDEr reward's PTB tokenizer also sees once it drops punctuation.
/// Specials are <c>&lt;pad&gt;</c> = 0, <c>&lt;/s&gt;</c> = 1, <c>&lt;unk&gt;</c> = 2, as in T5.
/// </summary>
public sealed class WordTokenizer : ICaptionTokenizer
{
    public const string PadToken = "<pad>";
    public const string EosToken = "</s>";
    public const string UnkToken = "<unk>";
    private const string FormatName = "scst-word-tokenizer";

    private readonly string[] _words;
    private readonly Dictionary<string, int> _ids;

    private WordTokenizer(string[] words, int minCount)
    {
        _words = words;
        MinCount = minCount;
        _ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < words.Length; i++) _ids[words[i]] = i;
    }

    public int VocabSize => _words.Length;
    public int PadId => 0;
    public int EosId => 1;
    public int UnkId => 2;
    public int MinCount { get; }
    public IReadOnlyList<string> Vocabulary => _words;

    /// <summary>
    /// Keeps every word seen at least <paramref name="minCount"/> times; ids are assigned by descending frequency,
    /// ties broken by ordinal order, so the same corpus always gives the same vocabulary.
    /// </summary>
    public static WordTokenizer Build(IEnumerable<string> captions, int minCount = 1)
    {
        if (minCount < 1) throw new ArgumentOutOfRangeException(nameof(minCount), minCount, "the frequency threshold must be at least 1.");
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var c in captions)
            foreach (var w in Words(c))
                counts[w] = counts.GetValueOrDefault(w) + 1;
        var words = counts.Where(kv => kv.Value >= minCount && kv.Key is not (PadToken or EosToken or UnkToken))
            .OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => kv.Key);
        return new WordTokenizer([PadToken, EosToken, UnkToken, .. words], minCount);
    }

    /// <summary>The basic tokenization: lowercase, punctuation other than apostrophes to spaces, split on whitespace.</summary>
    public static string[] Words(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var ch in text.ToLowerInvariant())
            sb.Append(ch != '\'' && (char.IsPunctuation(ch) || char.IsSymbol(ch)) ? ' ' : ch);
        return sb.ToString().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
    }

    public int[] Encode(string text, bool addEos = true)
    {
        var words = Words(text);
        var ids = new int[words.Length + (addEos ? 1 : 0)];
        for (var i = 0; i < words.Length; i++) ids[i] = _ids.GetValueOrDefault(words[i], UnkId);
        if (addEos) ids[^1] = EosId;
        return ids;
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        var words = new List<string>();
        foreach (var id in ids)
        {
            if (id < 0 || id >= _words.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside the vocabulary of {_words.Length}.");
            if (skipSpecialTokens && id <= UnkId) continue;
            words.Add(_words[id]);
        }
        return string.Join(' ', words);
    }

    public void Save(string path)
    {
        var json = new JsonObject
        {
            ["format"] = FormatName,
            ["version"] = 1,
            ["min_count"] = MinCount,
            ["vocab"] = new JsonArray(_words.Select(w => (JsonNode)JsonValue.Create(w)!).ToArray()),
        };
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    public static WordTokenizer Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"word tokenizer file '{path}' does not exist.", path);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e);
        }
        if (root is not JsonObject obj || obj["format"]?.GetValueKind() != JsonValueKind.String || (string)obj["format"]! != FormatName)
            throw new InvalidDataException($"{path}: not a word tokenizer file (expected an object with \"format\": \"{FormatName}\").");
        if (obj["vocab"] is not JsonArray vocab)
            throw new InvalidDataException($"{path}: key 'vocab' is missing or not an array of strings.");
        var words = new string[vocab.Count];
        for (var i = 0; i < vocab.Count; i++)
            words[i] = vocab[i]?.GetValueKind() == JsonValueKind.String
                ? (string)vocab[i]!
                : throw new InvalidDataException($"{path}: vocab[{i}] should be a string.");
        if (words.Length < 3 || words[0] != PadToken || words[1] != EosToken || words[2] != UnkToken)
            throw new InvalidDataException($"{path}: vocab must start with {PadToken}, {EosToken}, {UnkToken} (ids 0, 1, 2).");
        var dup = words.GroupBy(w => w, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new InvalidDataException($"{path}: vocab lists '{dup.Key}' more than once.");
        var minCount = obj["min_count"]?.GetValueKind() == JsonValueKind.Number ? (int)obj["min_count"]! : 1;
        return new WordTokenizer(words, minCount);
    }
}
