using System.Text;

namespace Scst.Reward;

/// <summary>
/// Caption preprocessing as coco-caption does it: Stanford PTBTokenizer (<c>-preserveLines -lowerCase</c>)
/// followed by dropping the punctuation tokens <c>'' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ;</c>.
/// This is a re-implementation of the PTB rules that matter for captions: punctuation and brackets
/// split off, clitics split (<c>man's → man 's</c>, <c>don't → do n't</c>, <c>cannot → can not</c>),
/// quotes, brackets and sentence-final periods turned into tokens that are then dropped, abbreviations
/// (<c>mr.</c>, <c>u.s.</c>, initials) keeping their period, and numbers keeping <c>, . :</c> inside them.
/// Like Stanford, rules see the original case; lowercasing happens on the output tokens.
/// </summary>
public static class PtbTokenizer
{
    /// <summary>coco-caption's PUNCTUATIONS list (tokens removed after PTB tokenization).</summary>
    public static readonly IReadOnlySet<string> DroppedTokens = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";",
    };

    private static readonly HashSet<string> Abbreviations = new(StringComparer.OrdinalIgnoreCase)
    {
        "mr", "mrs", "ms", "dr", "prof", "jr", "sr", "st", "mt", "ft", "vs", "etc", "inc", "ltd", "co", "corp",
        "gen", "gov", "sen", "rep", "rev", "sgt", "capt", "col", "lt", "ave", "blvd", "no", "jan", "feb", "mar",
        "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "messrs", "mme", "mlle", "bros", "dept",
    };

    private static readonly string[] Clitics = ["'s", "'re", "'ve", "'ll", "'d", "'m"];

    /// <summary>Tokenizes one caption and joins the kept tokens with single spaces (what the scorers see).</summary>
    public static string Tokenize(string caption) => string.Join(' ', TokenizeToList(caption));

    /// <summary>The kept tokens of one caption, lowercased.</summary>
    public static List<string> TokenizeToList(string caption)
    {
        var raw = new List<string>();
        foreach (var chunk in Normalize(caption).Split(' ', StringSplitOptions.RemoveEmptyEntries))
            LexChunk(chunk, raw);
        var kept = new List<string>(raw.Count);
        foreach (var t in raw)
        {
            // Stanford lowercases its output; bracket tokens (-LRB- etc.) are dropped whatever their case.
            if (!DroppedTokens.Contains(t)) kept.Add(t.ToLowerInvariant());
        }
        return kept;
    }

    private static string Normalize(string s)
    {
        var sb = new StringBuilder(s.Length + 8);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\u2018' or '\u2019' or '\u201A' or '\u201B' or '\u00B4': sb.Append('\''); break;
                case '\u201C' or '\u201D' or '\u201E' or '\u00AB' or '\u00BB': sb.Append('"'); break;
                case '\u2026': sb.Append(" ... "); break;
                case '\u2013' or '\u2014' or '\u2015': sb.Append(" -- "); break;
                default: sb.Append(Vocabulary.IsPythonSpace(c) ? ' ' : c); break;
            }
        }
        return sb.ToString();
    }

    private static void LexChunk(string chunk, List<string> output)
    {
        int start = 0;
        for (int i = 0; i < chunk.Length; i++)
        {
            char c = chunk[i];
            string? sep = null;
            int skip = 1;
            switch (c)
            {
                case '(': sep = "-LRB-"; break;
                case ')': sep = "-RRB-"; break;
                case '[': sep = "-LRB-"; break;
                case ']': sep = "-RRB-"; break;
                case '{': sep = "-LCB-"; break;
                case '}': sep = "-RCB-"; break;
                // Opening vs closing double quote only decides `` vs ''; both are dropped.
                case '"': sep = i == start ? "``" : "''"; break;
                case '`': sep = "`"; break;
                case '?' or '!' or ';': sep = c.ToString(); break;
                case '$' or '#' or '%': sep = c.ToString(); break;
                case ',' or ':':
                    if (i > start && i + 1 < chunk.Length && char.IsDigit(chunk[i - 1]) && char.IsDigit(chunk[i + 1])) continue;
                    sep = c.ToString();
                    break;
                case '&':
                    if (i > start && i + 1 < chunk.Length && char.IsLetter(chunk[i - 1]) && char.IsLetter(chunk[i + 1])) continue;
                    sep = "&";
                    break;
                case '.' when i + 1 < chunk.Length && chunk[i + 1] == '.':
                    while (i + skip < chunk.Length && chunk[i + skip] == '.') skip++;
                    sep = "...";
                    break;
                case '-' when i + 1 < chunk.Length && chunk[i + 1] == '-':
                    while (i + skip < chunk.Length && chunk[i + skip] == '-') skip++;
                    sep = "--";
                    break;
            }
            if (sep is null) continue;
            if (i > start) LexWord(chunk[start..i], output);
            output.Add(sep);
            i += skip - 1;
            start = i + 1;
        }
        if (start < chunk.Length) LexWord(chunk[start..], output);
    }

    /// <summary>A piece without separators: peel leading quotes/hyphens, trailing punctuation, then clitics.</summary>
    private static void LexWord(string w, List<string> output)
    {
        if (w.Length == 5 && w[0] == '-' && w[4] == '-' && DroppedTokens.Contains(w)) { output.Add(w); return; }
        while (w.Length > 0)
        {
            if (w[0] == '-' && !(w.Length > 1 && char.IsDigit(w[1]))) { output.Add("-"); w = w[1..]; continue; }
            if (w[0] == '\'' && !IsApostropheWord(w)) { output.Add("`"); w = w[1..]; continue; }
            break;
        }
        if (w.Length == 0) return;

        var trailing = new List<string>();
        while (w.Length > 0)
        {
            char last = w[^1];
            if (last == '-') { trailing.Add("-"); w = w[..^1]; continue; }
            if (last == '\'' && !IsApostropheWord(w)) { trailing.Add("'"); w = w[..^1]; continue; }
            if (last == '.' && w.Length > 0 && !IsAbbreviation(w)) { trailing.Add("."); w = w[..^1]; continue; }
            break;
        }
        if (w.Length > 0) SplitClitics(w, output);
        for (int i = trailing.Count - 1; i >= 0; i--) output.Add(trailing[i]);
    }

    private static void SplitClitics(string w, List<string> output)
    {
        if (w.Length > 3 && w.EndsWith("n't", StringComparison.OrdinalIgnoreCase) && char.IsLetter(w[^4]))
        {
            output.Add(w[..^3]);
            output.Add(w[^3..]);
            return;
        }
        foreach (var cl in Clitics)
        {
            if (w.Length > cl.Length && w.EndsWith(cl, StringComparison.OrdinalIgnoreCase) && char.IsLetterOrDigit(w[^(cl.Length + 1)]))
            {
                output.Add(w[..^cl.Length]);
                output.Add(w[^cl.Length..]);
                return;
            }
        }
        // PTB splits these assimilations into two words.
        switch (w.ToLowerInvariant())
        {
            case "cannot": output.Add(w[..3]); output.Add(w[3..]); return;
            case "gonna" or "gotta" or "wanna" or "gimme" or "lemme": output.Add(w[..3]); output.Add(w[3..]); return;
        }
        output.Add(w);
    }

    /// <summary>Words where an apostrophe at the edge belongs to the word: clitics alone ('s), '90s, 'em, 'til, rock 'n' roll.</summary>
    private static bool IsApostropheWord(string w)
    {
        var lw = w.ToLowerInvariant();
        if (lw is "'s" or "'re" or "'ve" or "'ll" or "'d" or "'m" or "'em" or "'til" or "'till" or "'tis" or "'twas" or "'n'" or "'n") return true;
        if (lw.Length >= 3 && lw[0] == '\'' && char.IsDigit(lw[1]) && char.IsDigit(lw[2]) && (lw.Length == 3 || lw[3..] == "s")) return true;
        return false;
    }

    private static bool IsAbbreviation(string w)
    {
        // w ends with '.'
        string stem = w[..^1];
        if (stem.Length == 0) return false;
        if (Abbreviations.Contains(stem)) return true;
        // Capital initial: "J."
        if (stem.Length == 1 && char.IsUpper(stem[0])) return true;
        // Acronyms with internal periods: "U.S.", "d.c.", "a.m.", "e.g."
        if (stem.Length >= 3)
        {
            bool ok = true;
            for (int i = 0; i < stem.Length; i++)
            {
                bool letterSlot = i % 2 == 0;
                if (letterSlot ? !char.IsLetter(stem[i]) : stem[i] != '.') { ok = false; break; }
            }
            if (ok && stem.Length % 2 == 1) return true;
        }
        return false;
    }
}
