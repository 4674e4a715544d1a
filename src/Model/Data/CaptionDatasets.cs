using System.Text.Json;

namespace Scst.Model.Data;

/// <summary>
/// Readers for the caption dataset formats in use: Karpathy's <c>dataset_coco.json</c> (also used for Flickr and
/// the built-in shapes set), LAVIS's <c>coco_karpathy_{train,val,test}.json</c>, and Flickr8k/30k token files.
/// Every reader returns one <see cref="CaptionImage"/> per image and fails with a <see cref="DatasetFormatException"/>
/// that names the file and the entry.
/// </summary>
public static class CaptionDatasets
{
    public static readonly string[] Splits = ["train", "val", "test"];

    /// <summary>
    /// Karpathy split format: <c>{"images": [{"filepath", "filename", "split", "sentences": [{"raw"}], "cocoid"?, "imgid"?}]}</c>.
    /// Image paths are <c>imageRoot/filepath/filename</c>; <paramref name="imageRoot"/> defaults to the JSON's folder.
    /// "restval" counts as train, as in every Karpathy-split paper.
    /// </summary>
    public static IReadOnlyList<CaptionImage> LoadKarpathy(string jsonPath, string? imageRoot = null, string? onlySplit = null)
    {
        imageRoot ??= Path.GetDirectoryName(Path.GetFullPath(jsonPath))!;
        using var doc = ParseJson(jsonPath);
        var images = RequireProperty(doc.RootElement, "images", JsonValueKind.Array, jsonPath, "$");
        var result = new List<CaptionImage>();
        var i = 0;
        foreach (var img in images.EnumerateArray())
        {
            var at = $"images[{i}]";
            if (img.ValueKind != JsonValueKind.Object) throw WrongType(jsonPath, at, "object", img);
            var split = RequireString(img, "split", jsonPath, at);
            split = split switch
            {
                "restval" => "train",
                "train" or "val" or "test" => split,
                _ => throw new DatasetFormatException(
                    $"{jsonPath}: {at}.split is '{split}'; expected train, restval, val or test."),
            };
            var filename = RequireString(img, "filename", jsonPath, at);
            var filepath = img.TryGetProperty("filepath", out var fp)
                ? (fp.ValueKind == JsonValueKind.String ? fp.GetString()! : throw WrongType(jsonPath, at + ".filepath", "string", fp))
                : "";
            var sentences = RequireProperty(img, "sentences", JsonValueKind.Array, jsonPath, at);
            var captions = new List<string>();
            var j = 0;
            foreach (var s in sentences.EnumerateArray())
            {
                var sAt = $"{at}.sentences[{j++}]";
                if (s.ValueKind != JsonValueKind.Object) throw WrongType(jsonPath, sAt, "object", s);
                captions.Add(RequireString(s, "raw", jsonPath, sAt));
            }
            if (captions.Count == 0)
                throw new DatasetFormatException($"{jsonPath}: {at} ('{filename}') has no sentences.");
            var id = img.TryGetProperty("cocoid", out var cid) ? IdText(cid, jsonPath, at + ".cocoid")
                : img.TryGetProperty("imgid", out var iid) ? IdText(iid, jsonPath, at + ".imgid")
                : Path.GetFileNameWithoutExtension(filename);
            if (onlySplit is null || onlySplit == split)
                result.Add(new CaptionImage(id, Path.Combine(imageRoot, filepath, filename), captions, split));
            i++;
        }
        return result;
    }

    /// <summary>
    /// LAVIS's annotation files. The train file has one entry per caption, <c>{"image", "caption": str, "image_id"}</c>,
    /// grouped here by image in first-seen order; val/test files have one entry per image, <c>{"image", "caption": [str]}</c>.
    /// Image ids come from <c>image_id</c> when present, else from the COCO file name's trailing number.
    /// </summary>
    public static IReadOnlyList<CaptionImage> LoadLavisKarpathy(string jsonPath, string split, string imageRoot)
    {
        if (!Splits.Contains(split))
            throw new ArgumentException($"split must be one of {string.Join(", ", Splits)}, got '{split}'.", nameof(split));
        using var doc = ParseJson(jsonPath);
        if (doc.RootElement.ValueKind != JsonValueKind.Array) throw WrongType(jsonPath, "$", "array", doc.RootElement);
        var byImage = new Dictionary<string, (string Id, List<string> Captions)>();
        var order = new List<string>();
        var i = 0;
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            var at = $"[{i++}]";
            if (e.ValueKind != JsonValueKind.Object) throw WrongType(jsonPath, at, "object", e);
            var image = RequireString(e, "image", jsonPath, at);
            if (!e.TryGetProperty("caption", out var cap))
                throw new DatasetFormatException($"{jsonPath}: {at} is missing key 'caption'.");
            var id = e.TryGetProperty("image_id", out var iid) ? IdText(iid, jsonPath, at + ".image_id") : CocoIdFromFileName(image);
            if (!byImage.TryGetValue(image, out var entry))
            {
                entry = (id, []);
                byImage[image] = entry;
                order.Add(image);
            }
            switch (cap.ValueKind)
            {
                case JsonValueKind.String:
                    entry.Captions.Add(cap.GetString()!);
                    break;
                case JsonValueKind.Array:
                    var j = 0;
                    foreach (var c in cap.EnumerateArray())
                    {
                        if (c.ValueKind != JsonValueKind.String) throw WrongType(jsonPath, $"{at}.caption[{j}]", "string", c);
                        entry.Captions.Add(c.GetString()!);
                        j++;
                    }
                    break;
                default:
                    throw WrongType(jsonPath, at + ".caption", "string or array of strings", cap);
            }
        }
        return order.Select(img =>
        {
            var (id, caps) = byImage[img];
            if (caps.Count == 0) throw new DatasetFormatException($"{jsonPath}: image '{img}' has no captions.");
            return new CaptionImage(id, Path.Combine(imageRoot, img), caps, split);
        }).ToList();
    }

    /// <summary>
    /// Flickr8k/30k: a token file of <c>&lt;image&gt;#&lt;n&gt;\t&lt;caption&gt;</c> lines and one list of image
    /// file names per split (e.g. <c>Flickr_8k.trainImages.txt</c>, <c>Flickr_8k.devImages.txt</c> as "val",
    /// <c>Flickr_8k.testImages.txt</c>). Images in no split file are left out.
    /// </summary>
    public static IReadOnlyList<CaptionImage> LoadFlickr(string tokenFile, string imageDir, IReadOnlyDictionary<string, string> splitFiles)
    {
        var splitOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (split, file) in splitFiles)
        {
            if (!Splits.Contains(split))
                throw new ArgumentException($"split must be one of {string.Join(", ", Splits)}, got '{split}'.", nameof(splitFiles));
            if (!File.Exists(file)) throw new FileNotFoundException($"Flickr {split} split file '{file}' does not exist.", file);
            foreach (var line in File.ReadLines(file))
            {
                var name = line.Trim();
                if (name.Length == 0) continue;
                if (splitOf.TryGetValue(name, out var other) && other != split)
                    throw new DatasetFormatException($"{file}: image '{name}' is also listed in the {other} split.");
                splitOf[name] = split;
            }
        }
        if (!File.Exists(tokenFile)) throw new FileNotFoundException($"Flickr token file '{tokenFile}' does not exist.", tokenFile);
        var captions = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var order = new List<string>();
        var lineNo = 0;
        foreach (var line in File.ReadLines(tokenFile))
        {
            lineNo++;
            if (line.Trim().Length == 0) continue;
            var tab = line.IndexOf('\t');
            var hash = tab < 0 ? -1 : line.LastIndexOf('#', tab);
            if (tab < 0 || hash < 0)
                throw new DatasetFormatException(
                    $"{tokenFile}:{lineNo}: expected '<image>#<n>\\t<caption>', got '{Shorten(line)}'.");
            var image = line[..hash];
            if (!captions.TryGetValue(image, out var list))
            {
                captions[image] = list = [];
                order.Add(image);
            }
            list.Add(line[(tab + 1)..].Trim());
        }
        return order.Where(splitOf.ContainsKey)
            .Select(img => new CaptionImage(Path.GetFileNameWithoutExtension(img), Path.Combine(imageDir, img), captions[img], splitOf[img]))
            .ToList();
    }

    /// <summary>COCO file names end in the zero-padded id (<c>COCO_val2014_000000391895.jpg</c> → 391895).</summary>
    public static string CocoIdFromFileName(string image)
    {
        var stem = Path.GetFileNameWithoutExtension(image);
        var tail = stem[(stem.LastIndexOf('_') + 1)..];
        return tail.Length > 0 && tail.All(char.IsAsciiDigit) ? long.Parse(tail).ToString() : stem;
    }

    private static JsonDocument ParseJson(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"dataset file '{path}' does not exist.", path);
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            throw new DatasetFormatException($"{path}: not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine}): {e.Message}", e);
        }
    }

    private static JsonElement RequireProperty(JsonElement obj, string key, JsonValueKind kind, string file, string at)
    {
        if (obj.ValueKind != JsonValueKind.Object) throw WrongType(file, at, "object", obj);
        if (!obj.TryGetProperty(key, out var v))
            throw new DatasetFormatException($"{file}: {at} is missing key '{key}'.");
        if (v.ValueKind != kind) throw WrongType(file, $"{at}.{key}", kind.ToString().ToLowerInvariant(), v);
        return v;
    }

    private static string RequireString(JsonElement obj, string key, string file, string at) =>
        RequireProperty(obj, key, JsonValueKind.String, file, at).GetString()!;

    private static string IdText(JsonElement v, string file, string at) => v.ValueKind switch
    {
        JsonValueKind.Number => v.GetRawText(),
        JsonValueKind.String => v.GetString()!,
        _ => throw WrongType(file, at, "number or string", v),
    };

    private static DatasetFormatException WrongType(string file, string at, string expected, JsonElement got) =>
        new($"{file}: {at} should be {(expected.StartsWith('a') || expected.StartsWith('o') ? "an" : "a")} {expected}, but is {got.ValueKind.ToString().ToLowerInvariant()} ({Shorten(got.GetRawText())}).");

    private static string Shorten(string s) => s.Length <= 60 ? s : s[..57] + "...";
}
