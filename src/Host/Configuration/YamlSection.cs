using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Scst.Host.Configuration;

/// <summary>
/// Reads one YAML mapping against a schema given by the calls made on it: every Get* names a known key, checks its
/// type and range, and records an error with file, line and column when it is wrong. <see cref="Finish"/> reports the
/// keys nobody asked for, with a "did you mean" suggestion. Missing sections read as empty so defaults apply. Every
/// value read is recorded in the <see cref="ConfigTrace"/> with its source (file position, preset or default); a key
/// the file leaves unset takes the trace's <c>model_type</c> preset value before the default.
/// </summary>
internal sealed class YamlSection
{
    private readonly YamlMappingNode? _node;
    private readonly Mark _where;
    private readonly string _file;
    private readonly string _path;
    private readonly List<ConfigError> _errors;
    private readonly ConfigTrace _trace;
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);

    public YamlSection(YamlMappingNode? node, Mark where, string file, string path, List<ConfigError> errors, ConfigTrace trace)
    {
        _node = node; _where = where; _file = file; _path = path; _errors = errors; _trace = trace;
    }

    public ConfigTrace Trace => _trace;
    public string Path => _path;

    public bool IsPresent => _node is not null;
    public Mark Where => _where;

    public IEnumerable<string> Keys =>
        _node?.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value ?? "") ?? [];

    public string KeyPath(string key) => _path.Length == 0 ? key : $"{_path}.{key}";

    /// <summary>An error at <paramref name="key"/>'s value when the file sets it, else at this section.</summary>
    public void Error(string key, string message) => Error(key, MarkOf(key), message);

    public void Error(string key, Mark at, string message) =>
        _errors.Add(new ConfigError(_file, at.Line, at.Column, KeyPath(key), message));

    private YamlNode? Find(string key)
    {
        _known.Add(key);
        if (_node is null) return null;
        foreach (var (k, v) in _node.Children)
            if (k is YamlScalarNode s && s.Value == key) return v;
        return null;
    }

    private static bool IsNull(YamlNode n) =>
        n is YamlScalarNode s && s.Style == ScalarStyle.Plain && s.Value is "null" or "~" or "" or "Null" or "NULL";

    private string? Scalar(string key, string expected) => Scalar(key, expected, out _);

    // The file's value, else the preset's, else null (the caller's default); `source` says which.
    private string? Scalar(string key, string expected, out string source)
    {
        _trace.Accept(KeyPath(key));
        source = ConfigTrace.Default;
        var n = Find(key);
        if (n is null || IsNull(n))
        {
            if (_trace.PresetValue(KeyPath(key)) is not { } preset) return null;
            source = preset.Source;
            return preset.Value;
        }
        if (n is YamlScalarNode s) { source = At(n.Start); return s.Value; }
        Error(key, n.Start, $"expected {expected}, got a {(n is YamlMappingNode ? "mapping" : "list")}");
        return null;
    }

    private string At(Mark m) => $"{_file}:{m.Line}:{m.Column}";

    /// <summary>Where <paramref name="key"/>'s value comes from now: its file position when set, else null.</summary>
    public string? SourceOf(string key)
    {
        var n = Find(key);
        return n is null || IsNull(n) ? null : At(n.Start);
    }

    private T Note<T>(string key, T value, string source)
    {
        _trace.Record(KeyPath(key), ConfigTrace.Text(value), source);
        return value;
    }

    /// <summary>Records a value the loader derived for <paramref name="key"/> (replacing what the read recorded).</summary>
    public void Resolve(string key, object? value, string source) => _trace.Record(KeyPath(key), ConfigTrace.Text(value), source);

    /// <summary>A key LAVIS uses that we refuse: known (no "unknown key"), an error with <paramref name="message"/> when set.</summary>
    public void Refuse(string key, string message)
    {
        _trace.Refused.Add(ConfigTrace.Generic(KeyPath(key)) ?? KeyPath(key));
        var n = Find(key);
        if (n is not null && !IsNull(n)) Error(key, n.Start, message);
    }

    private Mark MarkOf(string key) => _node is null ? _where : (Find(key)?.Start ?? _where);

    public bool Has(string key) { var n = Find(key); return n is not null && !IsNull(n); }

    public string GetString(string key, string fallback, params string[] allowed)
    {
        var v = ReadString(key, allowed, out var source);
        return v is null ? Note(key, fallback, ConfigTrace.Default) : Note(key, v, source);
    }

    public string? GetOptionalString(string key, params string[] allowed) =>
        Note(key, ReadString(key, allowed, out var source), source);

    private string? ReadString(string key, string[] allowed, out string source)
    {
        var v = Scalar(key, "a string", out source);
        if (v is null || allowed.Length == 0) return v;
        if (allowed.Contains(v, StringComparer.Ordinal)) return v;
        Error(key, MarkOf(key), $"expected one of {string.Join(" | ", allowed)}, got '{v}'{Suggest(v, allowed)}");
        return null;
    }

    public bool GetBool(string key, bool fallback)
    {
        var v = Scalar(key, "true or false", out var source);
        if (v is null) return Note(key, fallback, ConfigTrace.Default);
        switch (v.ToLowerInvariant())
        {
            case "true" or "yes" or "on": return Note(key, true, source);
            case "false" or "no" or "off": return Note(key, false, source);
            default:
                Error(key, MarkOf(key), $"expected true or false, got '{v}'");
                return fallback;
        }
    }

    public int GetInt(string key, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var v = ReadInt(key, min, max, out var source);
        return v is null ? Note(key, fallback, ConfigTrace.Default) : Note(key, v.Value, source);
    }

    public int? GetOptionalInt(string key, int min = int.MinValue, int max = int.MaxValue) =>
        Note(key, ReadInt(key, min, max, out var source), source);

    private int? ReadInt(string key, int min, int max, out string source)
    {
        var v = Scalar(key, "an integer", out source);
        if (v is null) return null;
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i))
        {
            // YAML writers often emit 1e3 or 1000.0 for integers; accept those when exact.
            if (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue)
                i = (int)d;
            else
            {
                Error(key, MarkOf(key), $"expected an integer, got '{v}'");
                return null;
            }
        }
        if (i < min || i > max)
        {
            Error(key, MarkOf(key), $"expected an integer {Range(min, max)}, got {i}");
            return null;
        }
        return i;
    }

    public double GetDouble(string key, double fallback, double min = double.NegativeInfinity, double max = double.PositiveInfinity,
        bool minExclusive = false)
    {
        var v = Scalar(key, "a number", out var source);
        if (v is null) return Note(key, fallback, ConfigTrace.Default);
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || double.IsNaN(d))
        {
            Error(key, MarkOf(key), $"expected a number, got '{v}'");
            return fallback;
        }
        if ((minExclusive ? d <= min : d < min) || d > max)
        {
            var lo = minExclusive ? $"> {min.ToString(CultureInfo.InvariantCulture)}" : $">= {min.ToString(CultureInfo.InvariantCulture)}";
            var rule = double.IsPositiveInfinity(max) ? lo : $"{lo} and <= {max.ToString(CultureInfo.InvariantCulture)}";
            Error(key, MarkOf(key), $"expected a number {rule}, got {v}");
            return fallback;
        }
        return Note(key, d, source);
    }

    public IReadOnlyList<string> GetStringList(string key, IReadOnlyList<string> fallback)
    {
        _trace.Accept(KeyPath(key));
        var n = Find(key);
        if (n is null || IsNull(n)) return Note(key, fallback, ConfigTrace.Default);
        if (n is YamlScalarNode s) return Note(key, (IReadOnlyList<string>)[s.Value ?? ""], At(n.Start)); // LAVIS configs sometimes write a single split unbracketed
        if (n is YamlSequenceNode seq)
        {
            var list = new List<string>();
            foreach (var item in seq.Children)
            {
                if (item is YamlScalarNode si) list.Add(si.Value ?? "");
                else Error(key, item.Start, "expected a list of strings");
            }
            return Note(key, (IReadOnlyList<string>)list, At(n.Start));
        }
        Error(key, n.Start, "expected a list of strings, got a mapping");
        return fallback;
    }

    /// <summary>A list of numbers, or null when absent; an entry that is not a number is reported and the list dropped.</summary>
    public IReadOnlyList<double>? GetDoubleList(string key)
    {
        _trace.Accept(KeyPath(key));
        var n = Find(key);
        if (n is null || IsNull(n)) return null;
        if (n is not YamlSequenceNode seq)
        {
            Error(key, n.Start, "expected a list of numbers, e.g. [0.5, 0.5, 0.5]");
            return null;
        }
        var list = new List<double>();
        foreach (var item in seq.Children)
        {
            if (item is YamlScalarNode si && double.TryParse(si.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) list.Add(d);
            else
            {
                Error(key, item.Start, $"expected a list of numbers, got '{(item as YamlScalarNode)?.Value ?? "a nested value"}'");
                return null;
            }
        }
        return Note(key, (IReadOnlyList<double>)list, At(n.Start));
    }

    public YamlSection Section(string key)
    {
        var n = Find(key);
        if (n is null || IsNull(n)) return new YamlSection(null, MarkOf(key), _file, KeyPath(key), _errors, _trace);
        if (n is YamlMappingNode m) return new YamlSection(m, m.Start, _file, KeyPath(key), _errors, _trace);
        Error(key, n.Start, "expected a mapping (a section of key: value lines)");
        return new YamlSection(null, n.Start, _file, KeyPath(key), _errors, _trace);
    }

    /// <summary>Sections whose names are data (e.g. dataset names under <c>datasets</c>).</summary>
    public IEnumerable<(string Name, YamlSection Section)> NamedSections()
    {
        if (_node is null) yield break;
        foreach (var (k, v) in _node.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "";
            _known.Add(name);
            if (v is YamlMappingNode m) yield return (name, new YamlSection(m, m.Start, _file, KeyPath(name), _errors, _trace));
            else if (IsNull(v)) yield return (name, new YamlSection(null, v.Start, _file, KeyPath(name), _errors, _trace));
            else Error(name, v.Start, "expected a mapping (a section of key: value lines)");
        }
    }

    /// <summary>Reports every key present in this mapping that the schema did not ask for.</summary>
    public void Finish()
    {
        if (_node is null) return;
        foreach (var (k, _) in _node.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "";
            if (_known.Contains(name)) continue;
            Error(name, k.Start, $"unknown key{Suggest(name, _known)}");
        }
    }

    private static string Range(int min, int max) =>
        (min, max) switch
        {
            (int.MinValue, int.MaxValue) => "",
            (_, int.MaxValue) => $">= {min}",
            (int.MinValue, _) => $"<= {max}",
            _ => $"in [{min}, {max}]",
        };

    internal static string Suggest(string given, IEnumerable<string> candidates)
    {
        var best = candidates
            .Select(c => (c, d: Levenshtein(given.ToLowerInvariant(), c.ToLowerInvariant())))
            .OrderBy(t => t.d).FirstOrDefault();
        return best.c is not null && best.d <= Math.Max(2, given.Length / 3) ? $" (did you mean '{best.c}'?)" : "";
    }

    private static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++) prev[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
