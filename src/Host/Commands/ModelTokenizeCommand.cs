using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Scst.Model.Tokenization;

namespace Scst.Host.Commands;

/// <summary>
/// <c>model tokenize</c>: what a SentencePiece model makes of a caption — sentencepiece's <c>encode(text)</c>
/// (T5's appended EOS not included), its pieces, and <c>decode(ids)</c> — so a user can check a caption's tokens.
/// </summary>
public static class ModelTokenizeCommand
{
    /// <summary>One string's result, with the field names sentencepiece users know.</summary>
    public sealed record Result(int[] ids, string[] pieces, string decode);

    private static readonly JsonSerializerOptions JsonOut = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "SentencePiece model file (a checkpoint's spiece.model)", Required = true };
        var text = new Option<string?>("--text") { Description = "one string to tokenize" };
        var file = new Option<string?>("--file") { Description = "a JSON array of strings to tokenize" };
        var json = new Option<string?>("--json") { Description = "also write a JSON array, in input order, of {\"ids\", \"pieces\", \"decode\"}" };
        var cmd = new Command("tokenize", "Print sentencepiece's ids, pieces and decode of each string (no EOS; T5 appends </s> = 1 when training)");
        foreach (var o in new Option[] { tokenizer, text, file, json }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            var (t, f) = (parse.GetValue(text), parse.GetValue(file));
            if ((t is null) == (f is null))
            {
                Console.Error.WriteLine("error: model tokenize: give exactly one of --text S or --file STRINGS.json");
                return 2;
            }
            var strings = t is not null ? [t] : ReadStrings(f!);
            var tok = SentencePieceTokenizer.Load(parse.GetValue(tokenizer)!);
            var results = strings.Select(s => Tokenize(tok, s)).ToList();
            for (var i = 0; i < strings.Length; i++)
            {
                var r = results[i];
                Console.WriteLine($"text:   {Quote(strings[i])}");
                Console.WriteLine($"ids:    [{string.Join(", ", r.ids)}]");
                Console.WriteLine($"pieces: [{string.Join(", ", r.pieces.Select(Quote))}]");
                Console.WriteLine($"decode: {Quote(r.decode)}");
            }
            if (parse.GetValue(json) is { } outPath)
            {
                File.WriteAllText(outPath, JsonSerializer.Serialize(results, JsonOut));
                Console.WriteLine($"wrote {results.Count} results to {outPath}");
            }
            return 0;
        });
        return cmd;
    }

    public static Result Tokenize(SentencePieceTokenizer tok, string text)
    {
        var (ids, pieces) = tok.EncodeWithPieces(text);
        return new Result(ids, pieces, tok.DecodeSentencePiece(ids));
    }

    /// <summary>A JSON array of strings, or one line naming the file and what is wrong with it.</summary>
    public static string[] ReadStrings(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"strings file '{path}' does not exist.", path);
        string?[]? strings;
        try { strings = JsonSerializer.Deserialize<string?[]>(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: expected a JSON array of strings ({e.Message})"); }
        if (strings is null) throw new InvalidDataException($"{path}: expected a JSON array of strings, found null");
        var nul = Array.IndexOf(strings, null);
        if (nul >= 0) throw new InvalidDataException($"{path}: element {nul} is null; expected a JSON array of strings");
        return strings!;
    }

    private static string Quote(string s) => JsonSerializer.Serialize(s, JsonOut);
}
