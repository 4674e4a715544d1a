using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Scst.Host.Configuration;

/// <summary>
/// Reads one YAML mapping against a schema given by the calls made on it: every Get* names a known key, checks its
/// type and range, and records an error with file, line and column when it is wrong. <see cref="Finish"/> reports the
/// keys nobody asked for, with a "did you mean" suggestion. Missing sections read as empty so defaults apply.
/// </summary>
internal sealed class YamlSection
{
    private readonly YamlMappingNode? _node;
    private readonly Mark _where;
    private readonly string _file;
    private readonly string _path;
    private readonly List<ConfigError> _errors;
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);

    public YamlSection(YamlMappingNode? node, Mark where, string file, string path, List<ConfigError> errors)
    {
        _node = node; _where = where; _file = file; _path = path; _errors = errors;
    }

    public bool IsPresent => _node is not null;
    public Mark Where => _where;

    public IEnumerable<string> Keys =>
        _node?.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value ?? "") ?? [];

    private string KeyPath(string key) => _path.Length == 0 ? key : $"{_path}.{key}";

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

    private string? Scalar(string key, string expected)
    {
        var n = Find(key);
        if (n is null || IsNull(n)) return null;
        if (n is YamlScalarNode s) return s.Value;
        Error(key, n.Start, $"expected {expected}, got a {(n is YamlMappingNode ? "mapping" : "list")}");
        return null;
    }

    private Mark MarkOf(string key) => _node is null ? _where : (Find(key)?.Start ?? _where);

    public bool Has(string key) { var n = Find(key); return n is not null && !IsNull(n); }

    public string GetString(string key, string fallback, params string[] allowed) => GetOptionalString(key, allowed) ?? fallback;

    public string? GetOptionalString(string key, params string[] allowed)
    {
        var v = Scalar(key, "a string");
        if (v is null || allowed.Length == 0) return v;
        if (allowed.Contains(v, StringComparer.Ordinal)) return v;
        Error(key, MarkOf(key), $"expected one of {string.Join(" | ", allowed)}, got '{v}'{Suggest(v, allowed)}");
        return null;
    }

    public bool GetBool(string key, bool fallback)
    {
        var v = Scalar(key, "true or false");
        if (v is null) return fallback;
        switch (v.ToLowerInvariant())
        {
            case "true" or "yes" or "on": return true;
            case "false" or "no" or "off": return false;
            default:
                Error(key, MarkOf(key), $"expected true or false, got '{v}'");
                return fallback;
        }
    }

    public int GetInt(string key, int fallback, int min = int.MinValue, int max = int.MaxValue) =>
        GetOptionalInt(key, min, max) ?? fallback;

    public int? GetOptionalInt(string key, int min = int.MinValue, int max = int.MaxValue)
    {
        var v = Scalar(key, "an integer");
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
        var v = Scalar(key, "a number");
        if (v is null) return fallback;
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
        return d;
    }

    public IReadOnlyList<string> GetStringList(string key, IReadOnlyList<string> fallback)
    {
        var n = Find(key);
        if (n is null || IsNull(n)) return fallback;
        if (n is YamlScalarNode s) return [s.Value ?? ""]; // LAVIS configs sometimes write a single split unbracketed
        if (n is YamlSequenceNode seq)
        {
            var list = new List<string>();
            foreach (var item in seq.Children)
            {
                if (item is YamlScalarNode si) list.Add(si.Value ?? "");
                else Error(key, item.Start, "expected a list of strings");
            }
            return list;
        }
        Error(key, n.Start, "expected a list of strings, got a mapping");
        return fallback;
    }

    /// <summary>A list of numbers, or null when absent; an entry that is not a number is reported and the list dropped.</summary>
    public IReadOnlyList<double>? GetDoubleList(string key)
    {
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
        return list;
    }

    public YamlSection Section(string key)
    {
        var n = Find(key);
        if (n is null || IsNull(n)) return new YamlSection(null, MarkOf(key), _file, KeyPath(key), _errors);
        if (n is YamlMappingNode m) return new YamlSection(m, m.Start, _file, KeyPath(key), _errors);
        Error(key, n.Start, "expected a mapping (a section of key: value lines)");
        return new YamlSection(null, n.Start, _file, KeyPath(key), _errors);
    }

    /// <summary>Sections whose names are data (e.g. dataset names under <c>datasets</c>).</summary>
    public IEnumerable<(string Name, YamlSection Section)> NamedSections()
    {
        if (_node is null) yield break;
        foreach (var (k, v) in _node.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "";
            _known.Add(name);
            if (v is YamlMappingNode m) yield return (name, new YamlSection(m, m.Start, _file, KeyPath(name), _errors));
            else if (IsNull(v)) yield return (name, new YamlSection(null, v.Start, _file, KeyPath(name), _errors));
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
