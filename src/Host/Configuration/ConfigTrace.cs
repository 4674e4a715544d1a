using System.Globalization;

namespace Scst.Host.Configuration;

/// <summary>One resolved key: its dotted path, its value as text and where the value came from.</summary>
public sealed record ResolvedKey(string Path, string Value, string Source);

/// <summary>
/// What a config resolved to, key by key, with each value's source: the file (<c>file:line:column</c>), a
/// <c>model_type</c> preset, or the default. Also the preset values the schema falls back to before its defaults,
/// and the set of every key path the schema accepts (dataset names written as <c>&lt;name&gt;</c>).
/// </summary>
public sealed class ConfigTrace
{
    private readonly List<ResolvedKey> _keys = [];
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _accepted = new(StringComparer.Ordinal);
    private IReadOnlyDictionary<string, string> _preset = new Dictionary<string, string>();
    private string _presetName = "";

    public const string Default = "default";

    public IReadOnlyList<ResolvedKey> Keys => _keys;
    /// <summary>Every key path the schema read (whether the file set it or not); dataset names as <c>&lt;name&gt;</c>.</summary>
    public IReadOnlyCollection<string> Accepted => _accepted;
    /// <summary>Key paths the schema names only to refuse them (never in <see cref="Accepted"/>).</summary>
    public SortedSet<string> Refused { get; } = new(StringComparer.Ordinal);

    public ResolvedKey? Find(string path) => _index.TryGetValue(path, out var i) ? _keys[i] : null;

    /// <summary>Values a <c>model_type</c> preset supplies when the file does not set them (paths may use <c>*</c> for a dataset name).</summary>
    public void UsePreset(string name, IReadOnlyDictionary<string, string> values)
    {
        _presetName = name;
        _preset = values;
    }

    internal (string Value, string Source)? PresetValue(string path)
    {
        if (_preset.Count == 0) return null;
        if (_preset.TryGetValue(path, out var v)) return (v, $"preset {_presetName}");
        if (Generic(path) is { } g && g != path && _preset.TryGetValue(g.Replace("<name>", "*", StringComparison.Ordinal), out v))
            return (v, $"preset {_presetName}");
        return null;
    }

    /// <summary>The path with the dataset name (second segment under <c>datasets</c>) replaced by <c>&lt;name&gt;</c>.</summary>
    public static string? Generic(string path)
    {
        var parts = path.Split('.');
        if (parts[0] == "preprocess" && parts.Length > 1) return "datasets.<name>." + string.Join('.', parts.Skip(1));
        if (parts[0] != "datasets" || parts.Length < 3) return path;
        parts[1] = "<name>";
        return string.Join('.', parts);
    }

    internal void Accept(string path) => _accepted.Add(Generic(path) ?? path);

    /// <summary>Records (or replaces) a resolved value.</summary>
    public void Record(string path, string value, string source)
    {
        var key = new ResolvedKey(path, value, source);
        if (_index.TryGetValue(path, out var i)) _keys[i] = key;
        else { _index[path] = _keys.Count; _keys.Add(key); }
    }

    public static string Text(object? value) => value switch
    {
        null => "null",
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        int i => i.ToString(CultureInfo.InvariantCulture),
        string s => Quote(s),
        IEnumerable<string> list => "[" + string.Join(", ", list.Select(Quote)) + "]",
        IEnumerable<double> numbers => "[" + string.Join(", ", numbers.Select(n => n.ToString("R", CultureInfo.InvariantCulture))) + "]",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    // YAML-quoted when a plain scalar would read back differently (empty, edge spaces, specials, or a non-string look).
    private static string Quote(string s)
    {
        var plain = s.Length > 0 && s.Trim() == s && s.IndexOfAny([':', '#', '"', '\'', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '%', '@', '`']) < 0
                    && !double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
                    && s.ToLowerInvariant() is not ("true" or "false" or "yes" or "no" or "on" or "off" or "null" or "~");
        return plain ? s : "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
    }
}
