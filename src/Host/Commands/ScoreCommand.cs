using System.CommandLine;
using System.Text.Json;
using Scst.Reward;
using Spectre.Console;

namespace Scst.Host.Commands;

/// <summary>
/// <c>score</c>: a drop-in for coco-caption's COCOEvalCap. Reads COCO caption annotations and COCO
/// results, evaluates only the images present in the results (as coco-caption does), prints the
/// metric table and optionally writes corpus and per-image metrics as JSON.
/// </summary>
public static class ScoreCommand
{
    public static Command Create()
    {
        var annotations = new Option<string>("--annotations") { Description = "COCO captions annotation JSON (images, annotations with image_id and caption)", Required = true };
        var results = new Option<string>("--results") { Description = "COCO results JSON: [{\"image_id\", \"caption\"}]", Required = true };
        var pretokenized = new Option<bool>("--pretokenized") { Description = "Captions are already tokenized: skip the PTB tokenizer" };
        var eos = new Option<bool>("--eos") { Description = "Count an EOS token in CIDEr-D n-grams (off in coco-caption)" };
        var output = new Option<string?>("--out") { Description = "Write corpus metrics {\"Bleu_1\"..\"CIDEr\"} to this JSON file" };
        var perImage = new Option<string?>("--per-image") { Description = "Write per-image metrics {\"<image_id>\": {...}} to this JSON file" };
        var threads = new Option<int>("--threads") { Description = "Worker threads (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount };

        var cmd = new Command("score", "Score captions like coco-caption's COCOEvalCap: BLEU-1..4, ROUGE-L, CIDEr-D");
        foreach (var o in new Option[] { annotations, results, pretokenized, eos, output, perImage, threads }) cmd.Options.Add(o);
        cmd.SetAction(parseResult => Run(new ScoreArgs(
                parseResult.GetValue(annotations)!, parseResult.GetValue(results)!, parseResult.GetValue(pretokenized),
                parseResult.GetValue(eos), parseResult.GetValue(output), parseResult.GetValue(perImage), parseResult.GetValue(threads)),
            parseResult.InvocationConfiguration.Output, parseResult.InvocationConfiguration.Error));
        return cmd;
    }

    public sealed record ScoreArgs(string Annotations, string Results, bool Pretokenized = false, bool CountEos = false,
        string? Out = null, string? PerImage = null, int Threads = 1);

    /// <summary>Runs the command; returns the process exit code (0 ok, 2 bad input).</summary>
    public static int Run(ScoreArgs args, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var samples = CocoCaptionFiles.Load(args.Annotations, args.Results);
            var eval = CaptionEvaluator.Evaluate(samples, new EvaluationOptions
            {
                Tokenize = !args.Pretokenized, CountEos = args.CountEos, DegreeOfParallelism = Math.Max(1, args.Threads),
            });
            PrintTable(eval, args, stdout);
            var json = new JsonSerializerOptions { WriteIndented = true };
            if (args.Out is not null)
                File.WriteAllText(args.Out, JsonSerializer.Serialize(CaptionEvaluation.MetricNames.ToDictionary(m => m, m => eval.Corpus[m]), json));
            if (args.PerImage is not null)
            {
                var per = new Dictionary<string, Dictionary<string, double>>();
                for (int i = 0; i < eval.ImageIds.Count; i++)
                    per[eval.ImageIds[i]] = CaptionEvaluation.MetricNames.ToDictionary(m => m, m => eval.PerImage[m][i]);
                File.WriteAllText(args.PerImage, JsonSerializer.Serialize(per, json));
            }
            return 0;
        }
        catch (CocoFormatException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (IOException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    private static void PrintTable(CaptionEvaluation eval, ScoreArgs args, TextWriter stdout)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(stdout), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors,
        });
        console.Profile.Width = 160;
        var table = new Table().AddColumn("metric").AddColumn(new TableColumn("score").RightAligned());
        foreach (var m in CaptionEvaluation.MetricNames) table.AddRow(m, eval.Corpus[m].ToString("F6", System.Globalization.CultureInfo.InvariantCulture));
        console.Write(table);
        stdout.WriteLine($"{eval.ImageIds.Count} images; tokenizer: {(args.Pretokenized ? "none (pretokenized)" : "PTB")}; CIDEr-D df: corpus; EOS counted: {(eval.CountsEos ? "yes" : "no")}");
    }
}

public sealed class CocoFormatException(string message) : Exception(message);

/// <summary>Reads COCO caption annotations + results into samples, with errors that name the file and entry.</summary>
public static class CocoCaptionFiles
{
    public static List<CaptionSample> Load(string annotationsPath, string resultsPath)
    {
        using var ann = Parse(annotationsPath);
        using var res = Parse(resultsPath);

        var annRoot = ann.RootElement;
        if (annRoot.ValueKind != JsonValueKind.Object)
            throw new CocoFormatException($"{annotationsPath}: expected a JSON object with 'annotations' (COCO captions format), found {annRoot.ValueKind}");
        if (!annRoot.TryGetProperty("annotations", out var anns) || anns.ValueKind != JsonValueKind.Array)
            throw new CocoFormatException($"{annotationsPath}: missing 'annotations' array (COCO captions format)");

        var refs = new Dictionary<string, List<string>>();
        var order = new List<string>();
        if (annRoot.TryGetProperty("images", out var images))
        {
            if (images.ValueKind != JsonValueKind.Array) throw new CocoFormatException($"{annotationsPath}: 'images' must be an array");
            int i = 0;
            foreach (var img in images.EnumerateArray())
            {
                if (img.ValueKind != JsonValueKind.Object || !img.TryGetProperty("id", out var id))
                    throw new CocoFormatException($"{annotationsPath}: images[{i}] has no 'id'");
                order.Add(IdOf(id, annotationsPath, $"images[{i}].id"));
                i++;
            }
        }
        int a = 0;
        foreach (var entry in anns.EnumerateArray())
        {
            var (id, caption) = Entry(entry, annotationsPath, $"annotations[{a}]");
            if (!refs.TryGetValue(id, out var list)) refs[id] = list = new List<string>();
            list.Add(caption);
            a++;
        }

        var resRoot = res.RootElement;
        if (resRoot.ValueKind != JsonValueKind.Array)
            throw new CocoFormatException($"{resultsPath}: expected a JSON array of {{\"image_id\", \"caption\"}} (COCO results format), found {resRoot.ValueKind}");
        var cands = new Dictionary<string, string>();
        int r = 0;
        foreach (var entry in resRoot.EnumerateArray())
        {
            var (id, caption) = Entry(entry, resultsPath, $"[{r}]");
            if (!refs.ContainsKey(id))
                throw new CocoFormatException($"{resultsPath}: entry [{r}] has image_id {id}, which has no captions in {annotationsPath}");
            if (!cands.TryAdd(id, caption))
                throw new CocoFormatException($"{resultsPath}: entry [{r}] repeats image_id {id}; coco-caption expects one caption per image");
            r++;
        }
        if (cands.Count == 0) throw new CocoFormatException($"{resultsPath}: no results to score");

        // coco-caption evaluates the result images in the annotation file's image order.
        var seen = new HashSet<string>();
        var ids = order.Where(id => cands.ContainsKey(id) && seen.Add(id)).ToList();
        ids.AddRange(cands.Keys.Where(seen.Add));
        return ids.Select(id => new CaptionSample(id, refs[id], cands[id])).ToList();
    }

    private static JsonDocument Parse(string path)
    {
        if (!File.Exists(path)) throw new CocoFormatException($"{path}: file not found");
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new CocoFormatException($"{path}: not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine}): {e.Message}");
        }
    }

    private static (string Id, string Caption) Entry(JsonElement e, string path, string where)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new CocoFormatException($"{path}: {where} is {e.ValueKind}, expected an object with image_id and caption");
        if (!e.TryGetProperty("image_id", out var id)) throw new CocoFormatException($"{path}: {where} has no 'image_id'");
        if (!e.TryGetProperty("caption", out var cap) || cap.ValueKind != JsonValueKind.String)
            throw new CocoFormatException($"{path}: {where} (image_id {id.GetRawText()}) has no string 'caption'");
        return (IdOf(id, path, where + ".image_id"), cap.GetString()!);
    }

    private static string IdOf(JsonElement id, string path, string where) => id.ValueKind switch
    {
        JsonValueKind.Number => id.GetRawText(),
        JsonValueKind.String => id.GetString()!,
        _ => throw new CocoFormatException($"{path}: {where} is {id.ValueKind}, expected a number or string"),
    };
}
