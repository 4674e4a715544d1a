using System.Text.Json;

namespace Scst.Reward.Tests;

/// <summary>One case of shared/reference/*.json: inputs and pycocoevalcap's outputs.</summary>
public sealed record VectorCase(
    string Id,
    string[] ImgIds,
    Dictionary<string, string[]> Refs,
    Dictionary<string, string> Cands,
    JsonElement Expected,
    Dictionary<string, string[]>? RawRefs,
    Dictionary<string, string>? RawCands)
{
    public override string ToString() => Id;

    public double Expect(string metric) => Expected.GetProperty(metric).GetDouble();

    public double[] ExpectPerImage(string metric) => metric.StartsWith("Bleu_")
        ? Expected.GetProperty("Bleu_per_image").GetProperty(metric).EnumerateArray().Select(e => e.GetDouble()).ToArray()
        : Expected.GetProperty(metric + "_per_image").EnumerateArray().Select(e => e.GetDouble()).ToArray();

    public List<CaptionSample> Samples(bool raw = false) => ImgIds
        .Select(id => new CaptionSample(id, raw ? RawRefs![id] : Refs[id], raw ? RawCands![id] : Cands[id])).ToList();
}

public static class ReferenceVectors
{
    public const string Coco = "coco_metrics_vectors.json";
    public const string Flickr = "flickr8k_train_subset_vectors.json";

    private static readonly Dictionary<string, List<VectorCase>> Cache = new();

    public static List<VectorCase> Load(string file)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(file, out var cached)) return cached;
            var path = Path.Combine(AppContext.BaseDirectory, "data", "reference", file);
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var cases = new List<VectorCase>();
            foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
            {
                Dictionary<string, string[]>? rawRefs = null;
                Dictionary<string, string>? rawCands = null;
                if (c.TryGetProperty("raw", out var raw))
                {
                    rawRefs = raw.GetProperty("refs").Deserialize<Dictionary<string, string[]>>();
                    rawCands = raw.GetProperty("cands").Deserialize<Dictionary<string, string>>();
                }
                cases.Add(new VectorCase(
                    c.GetProperty("id").GetString()!,
                    c.GetProperty("img_ids").EnumerateArray().Select(e => e.GetString()!).ToArray(),
                    c.GetProperty("refs").Deserialize<Dictionary<string, string[]>>()!,
                    c.GetProperty("cands").Deserialize<Dictionary<string, string>>()!,
                    c.GetProperty("expected").Clone(),
                    rawRefs, rawCands));
            }
            Cache[file] = cases;
            return cases;
        }
    }

    public static TheoryData<string, string> AllCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var file in new[] { Coco, Flickr })
            foreach (var c in Load(file)) data.Add(file, c.Id);
        return data;
    }

    public static VectorCase Get(string file, string id) => Load(file).Single(c => c.Id == id);
}
