using System.Text.RegularExpressions;
using Scst.Host.Configuration;

namespace Scst.Host.Tests;

/// <summary>
/// Every key the loader reads is documented in docs/configuration.md with what it changes, and every LAVIS key it
/// refuses is in the page's refused table. The keys come from the loader itself (its trace of every key read while
/// parsing the shipped configs and LAVIS files), so keys added to the loader are checked without touching this test.
/// </summary>
public partial class ConfigDocTests
{
    private static string RepoFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, relative);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException($"{relative} not found above {AppContext.BaseDirectory}");
    }

    // Configs that, together, make the loader read every section: tiny + shapes + scst, pretrained + presets, LAVIS files.
    private static IEnumerable<ConfigTrace> Traces()
    {
        var files = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "configs"), "*.yaml", SearchOption.AllDirectories)
            .Concat(Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "data", "lavis"), "*.yaml"));
        foreach (var f in files)
        {
            LoadedConfig? c = null;
            try { c = ConfigLoader.LoadTraced(f); } catch (ConfigException) { }
            if (c is not null) yield return c.Trace;
        }
    }

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex Backticked();

    /// <summary>Section path (headings' first backticked name, {a,b} expanded) → key → the row's last cell.</summary>
    private static Dictionary<string, Dictionary<string, string>> DocTables(out Dictionary<string, string> refused)
    {
        var tables = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        refused = new Dictionary<string, string>(StringComparer.Ordinal);
        List<string> sections = [];
        var inRefused = false;
        foreach (var line in File.ReadAllLines(RepoFile(Path.Combine("docs", "configuration.md"))))
        {
            if (line.StartsWith('#'))
            {
                inRefused = line.Contains("Refused", StringComparison.Ordinal);
                var m = Backticked().Match(line);
                sections = !m.Success ? [] : Expand(m.Groups[1].Value);
                continue;
            }
            if (!line.StartsWith("| `", StringComparison.Ordinal)) continue;
            var row = line.Trim();
            var cells = row[1..(row.EndsWith('|') ? ^1 : ^0)].Split('|').Select(c => c.Trim()).ToArray();
            var key = Backticked().Match(cells[0]).Groups[1].Value;
            if (inRefused) { refused[key] = cells[^1]; continue; }
            foreach (var sec in sections)
            {
                if (!tables.TryGetValue(sec, out var t)) tables[sec] = t = new Dictionary<string, string>(StringComparer.Ordinal);
                t[key] = cells[^1];
            }
        }
        return tables;
    }

    private static List<string> Expand(string path)
    {
        var m = Regex.Match(path, @"\{([^}]*)\}");
        if (!m.Success) return [path];
        return m.Groups[1].Value.Split(',').SelectMany(alt => Expand(path[..m.Index] + alt.Trim() + path[(m.Index + m.Length)..])).ToList();
    }

    [Fact]
    public void EveryKeyTheLoaderReadsIsDocumentedWithWhatItChanges()
    {
        var traces = Traces().ToList();
        var accepted = traces.SelectMany(t => t.Accepted).Where(k => !k.StartsWith("preprocess.", StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
        // The walk covers every section (guards against a walk that silently reads nothing).
        foreach (var k in new[] { "model.model_type", "model.tokenizer.type", "model.architecture.d_model", "datasets.<name>.shapes.seed",
                     "datasets.<name>.vis_processor.eval.image_size", "datasets.<name>.text_processor.train.prompt", "run.num_workers",
                     "scst.reward.eos_token", "scst.is_clip" })
            Assert.Contains(k, accepted);

        var tables = DocTables(out _);
        var problems = new List<string>();
        foreach (var path in accepted.Order(StringComparer.Ordinal))
        {
            var dot = path.LastIndexOf('.');
            var (section, key) = (path[..dot], path[(dot + 1)..]);
            if (!tables.TryGetValue(section, out var t) || !t.TryGetValue(key, out var meaning))
                problems.Add($"{path}: no row in docs/configuration.md's `{section}` table");
            else if (meaning.Length == 0 || meaning.StartsWith('`') && meaning.EndsWith('`') && !meaning.Contains(' '))
                problems.Add($"{path}: the row says nothing about what the key changes");
            else if (meaning.Contains("no effect", StringComparison.OrdinalIgnoreCase))
                problems.Add($"{path}: documented as having no effect ('{meaning}')");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void EveryRefusedLavisKeyIsListedWithWhatToUseInstead()
    {
        var refusedKeys = Traces().SelectMany(t => t.Refused).ToHashSet(StringComparer.Ordinal);
        Assert.Contains("run.val_freq", refusedKeys);
        Assert.Contains("scst.rollout_splits", refusedKeys);
        DocTables(out var doc);
        foreach (var k in refusedKeys)
        {
            Assert.True(doc.TryGetValue(k, out var instead), $"{k}: not in docs/configuration.md's refused table");
            Assert.False(string.IsNullOrWhiteSpace(instead), k);
        }
    }
}
