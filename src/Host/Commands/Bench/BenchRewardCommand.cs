using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Scst.Reward;

namespace Scst.Host.Commands.Bench;

/// <summary>
/// <c>bench reward</c>: CIDEr-D corpus scoring (single-threaded and parallel) and the 16×5 training
/// reward call, on a corpus file or a synthetic COCO-like corpus. The timed corpus work is what
/// pycocoevalcap's <c>Cider().compute_score</c> does: tokenized strings in, scores out.
/// </summary>
public static class BenchRewardCommand
{
    public static Command Create()
    {
        var corpus = new Option<string?>("--corpus") { Description = "Reference-vector JSON (shared/reference format) or COCO annotations JSON (with --results)" };
        var results = new Option<string?>("--results") { Description = "COCO results JSON when --corpus is COCO annotations" };
        var caseId = new Option<string?>("--case") { Description = "Case id in a reference-vector file (default: the largest case)" };
        var synthetic = new Option<int>("--synthetic-images") { Description = "Generate a deterministic COCO-like corpus of N images instead" };
        var refs = new Option<int>("--refs") { Description = "References per synthetic image", DefaultValueFactory = _ => 5 };
        var repeat = new Option<int>("--repeat") { Description = "Timed repetitions (the best and median are reported)", DefaultValueFactory = _ => 5 };
        var threads = new Option<int>("--threads") { Description = "Threads for the parallel run (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var json = new Option<string?>("--json") { Description = "Also write the figures to this JSON file" };
        var cmd = new Command("reward", "Benchmark CIDEr-D corpus scoring and the training reward call");
        foreach (var o in new Option[] { corpus, results, caseId, synthetic, refs, repeat, threads, json }) cmd.Options.Add(o);
        cmd.SetAction(p =>
        {
            var output = p.InvocationConfiguration.Output;
            try
            {
                List<CaptionSample> samples; string source;
                if (p.GetValue(synthetic) > 0)
                {
                    samples = SyntheticCorpus.Generate(p.GetValue(synthetic), p.GetValue(refs));
                    source = $"synthetic {p.GetValue(synthetic)} images x {p.GetValue(refs)} refs";
                }
                else if (p.GetValue(corpus) is { } path)
                {
                    samples = LoadCorpus(path, p.GetValue(results), p.GetValue(caseId), out source);
                }
                else
                {
                    p.InvocationConfiguration.Error.WriteLine("error: give --corpus FILE or --synthetic-images N");
                    return 2;
                }
                Run(samples, source, Math.Max(1, p.GetValue(repeat)), Math.Max(1, p.GetValue(threads)), output, p.GetValue(json));
                return 0;
            }
            catch (Exception e) when (e is CocoFormatException or IOException or JsonException or KeyNotFoundException or InvalidOperationException)
            {
                p.InvocationConfiguration.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
        });
        return cmd;
    }

    private static List<CaptionSample> LoadCorpus(string path, string? results, string? caseId, out string source)
    {
        if (results is not null)
        {
            source = $"COCO {Path.GetFileName(path)} + {Path.GetFileName(results)} (PTB-tokenized before timing)";
            return CocoCaptionFiles.Load(path, results)
                .Select(s => new CaptionSample(s.ImageId, s.References.Select(PtbTokenizer.Tokenize).ToArray(), PtbTokenizer.Tokenize(s.Candidate))).ToList();
        }
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        if (!doc.RootElement.TryGetProperty("cases", out var cases))
            throw new CocoFormatException($"{path}: no 'cases' array (reference-vector format); for COCO annotations also pass --results");
        var chosen = cases.EnumerateArray()
            .Where(c => caseId is null || c.GetProperty("id").GetString() == caseId)
            .OrderByDescending(c => c.GetProperty("img_ids").GetArrayLength()).FirstOrDefault();
        if (chosen.ValueKind != JsonValueKind.Object) throw new CocoFormatException($"{path}: no case '{caseId}'");
        source = $"{Path.GetFileName(path)} case {chosen.GetProperty("id").GetString()}";
        var refs = chosen.GetProperty("refs");
        var cands = chosen.GetProperty("cands");
        return chosen.GetProperty("img_ids").EnumerateArray().Select(e => e.GetString()!).Select(id => new CaptionSample(id,
            refs.GetProperty(id).EnumerateArray().Select(r => r.GetString()!).ToArray(), cands.GetProperty(id).GetString()!)).ToList();
    }

    /// <summary>Strings → ids → CIDEr-D, what pycocoevalcap's compute_score covers.</summary>
    private static CiderScores ScoreCorpus(List<CaptionSample> samples, int dop)
    {
        var vocab = new Vocabulary();
        var cands = new int[samples.Count][];
        var refs = new int[samples.Count][][];
        for (int i = 0; i < samples.Count; i++)
        {
            cands[i] = vocab.EncodeWhitespace(samples[i].Candidate);
            var r = samples[i].References;
            refs[i] = new int[r.Count][];
            for (int j = 0; j < r.Count; j++) refs[i][j] = vocab.EncodeWhitespace(r[j]);
        }
        return CiderD.Score(cands, refs, -1, dop);
    }

    private static (double Best, double Median) Time(int repeat, Action action)
    {
        action(); // warm-up: JIT and thread-local buffers
        var t = new double[repeat];
        for (int i = 0; i < repeat; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            t[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(t);
        return (t[0], t[repeat / 2]);
    }

    private static void Run(List<CaptionSample> samples, string source, int repeat, int threads, TextWriter o, string? jsonPath)
    {
        var inv = CultureInfo.InvariantCulture;
        int images = samples.Count, refCount = samples.Sum(s => s.References.Count);
        o.WriteLine($"corpus: {source}: {images} images, {refCount} references, 1 candidate each");
        o.WriteLine($"machine: {Environment.ProcessorCount} logical cores, .NET {Environment.Version}");

        double corpusScore = 0;
        var single = Time(repeat, () => corpusScore = ScoreCorpus(samples, 1).Corpus);
        var parallel = Time(repeat, () => ScoreCorpus(samples, threads));
        o.WriteLine(string.Create(inv, $"CIDEr-D corpus = {corpusScore:F6}"));
        o.WriteLine(string.Create(inv, $"single-threaded: best {single.Best:F4} s, median {single.Median:F4} s, {images / single.Best:F0} images/s"));
        o.WriteLine(string.Create(inv, $"parallel ({threads} threads): best {parallel.Best:F4} s, median {parallel.Median:F4} s, {images / parallel.Best:F0} images/s"));

        // Training reward: df from all references of the corpus, then 16 images x 5 candidates per call.
        const int B = 16, K = 5;
        var df = DocumentFrequency.Build(samples.Select(s => s.References).ToList(), countEos: true, degreeOfParallelism: threads);
        var reward = new CiderDReward(df);
        var vocab = df.Vocabulary;
        int[] Enc(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => vocab.TryGetId(w, out var id) ? id : 0).ToArray();
        int batches = Math.Max(1, Math.Min(64, images / B));
        var batchRefs = new IReadOnlyList<int[]>[batches][];
        var batchCands = new int[batches][][];
        for (int b = 0; b < batches; b++)
        {
            batchRefs[b] = new IReadOnlyList<int[]>[B];
            batchCands[b] = new int[B * K][];
            for (int i = 0; i < B; i++)
            {
                var s = samples[(b * B + i) % images];
                batchRefs[b][i] = s.References.Select(Enc).ToArray();
                for (int k = 0; k < K; k++) batchCands[b][i * K + k] = Enc(k == 0 ? s.Candidate : samples[(b * B + i + k * 7) % images].Candidate);
            }
        }
        var rewards = new double[B * K];
        int calls = 0;
        var train = Time(repeat, () =>
        {
            for (int rep = 0; rep < 20; rep++)
                for (int b = 0; b < batches; b++) { reward.Score(batchRefs[b], batchCands[b], rewards); calls++; }
        });
        double perCall = train.Best / (20 * batches);
        o.WriteLine(string.Create(inv, $"training reward {B}x{K} (precomputed df over {df.NumImages} images, {df.NGramCount} n-grams, EOS counted): {perCall * 1e6:F1} us per call"));

        if (jsonPath is not null)
        {
            File.WriteAllText(jsonPath, JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["source"] = source, ["images"] = images, ["references"] = refCount, ["cores"] = Environment.ProcessorCount,
                ["cider"] = corpusScore, ["single_best_s"] = single.Best, ["single_median_s"] = single.Median,
                ["parallel_threads"] = threads, ["parallel_best_s"] = parallel.Best, ["parallel_median_s"] = parallel.Median,
                ["train_16x5_us"] = perCall * 1e6,
            }, new JsonSerializerOptions { WriteIndented = true }));
        }
    }
}
