using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scst.Model.SafeTensors;

namespace Scst.Model.Checkpoints;

/// <summary>One shard of a written folder.</summary>
public sealed record HubShard(string File, long FileBytes, long TensorBytes, int TensorCount);

/// <summary>What <see cref="HubLayoutFolder.Ensure"/> found or wrote.</summary>
public sealed record HubLayoutResult(string Dir, bool Written, IReadOnlyList<HubShard> Shards, long TotalSize, int TensorCount, TimeSpan Elapsed)
{
    public long ShardFileBytes => Shards.Sum(s => s.FileBytes);
    public double MegabytesPerSecond => Elapsed.TotalSeconds > 0 ? ShardFileBytes / 1e6 / Elapsed.TotalSeconds : double.PositiveInfinity;
}

/// <summary>
/// Writes random-valued model folders laid out exactly as Hugging Face hub repositories are (<c>config.json</c>,
/// <c>model-0000i-of-0000n.safetensors</c> shards split as <c>save_pretrained(max_shard_size=...)</c> splits them,
/// <c>model.safetensors.index.json</c>, <c>spiece.model</c>), for benchmarks and tests of models that cannot be
/// downloaded here. Shards are streamed (<see cref="SafeTensorsStreamWriter"/>) with <see cref="SyntheticWeights"/>.
/// A folder is cached: <c>layout.json</c>, written last, records a fingerprint of what was asked and every file's
/// size; when it matches, nothing is rewritten. Output is deterministic, so concurrent writers only duplicate work.
/// The BLIP-2 FlanT5-XL config and tensor table are in HubLayoutFolder.Blip2.cs.
/// </summary>
public static partial class HubLayoutFolder
{
    public const string LayoutFile = "layout.json";
    public const string SpieceFile = "spiece.model";
    public const string LayoutFormat = "scst-hub-layout/1";
    /// <summary><c>save_pretrained(max_shard_size="10GB")</c>: 10·10⁹ bytes, the split of the BLIP-2 hub repositories.</summary>
    public const long DefaultMaxShardBytes = 10_000_000_000;
    public const string SpieceResource = "Scst.Model.Checkpoints.t5_style_unigram.model";
    private const string WritingMarker = ".hub-layout-writing";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    // ---------------------------------------------------------------- shards

    /// <summary>Total elements of a tensor list.</summary>
    public static long ParameterCount(IEnumerable<(string Name, long[] Shape)> tensors) =>
        tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

    /// <summary>
    /// huggingface_hub's <c>split_torch_state_dict_into_shards</c> (what <c>save_pretrained</c> calls): tensors in order
    /// fill the current shard until the next one would pass <paramref name="maxShardBytes"/>; a tensor larger than
    /// that gets a shard of its own.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<(string Name, long[] Shape)>> SplitShards(
        IReadOnlyList<(string Name, long[] Shape)> tensors, long maxShardBytes, int elementSize = 4)
    {
        if (maxShardBytes <= 0) throw new ArgumentOutOfRangeException(nameof(maxShardBytes), maxShardBytes, "must be positive.");
        var shards = new List<IReadOnlyList<(string, long[])>>();
        var current = new List<(string, long[])>();
        long size = 0;
        foreach (var t in tensors)
        {
            var bytes = t.Shape.Aggregate(1L, (a, b) => a * b) * elementSize;
            if (bytes > maxShardBytes) { shards.Add([t]); continue; }
            if (size + bytes > maxShardBytes) { shards.Add(current); current = []; size = 0; }
            current.Add(t);
            size += bytes;
        }
        if (current.Count > 0 || shards.Count == 0) shards.Add(current);
        return shards;
    }

    /// <summary>transformers' shard names: <c>model-00001-of-00002.safetensors</c>; one shard is <c>model.safetensors</c>.</summary>
    public static string ShardFileName(int index, int count) =>
        count == 1 ? HfCheckpoint.WeightsFile : $"model-{index + 1:D5}-of-{count:D5}.safetensors";

    // ---------------------------------------------------------------- writing

    /// <summary>
    /// Writes the folder unless <c>layout.json</c> shows it was already written with the same config, tensors, shard
    /// size, seed and tokenizer and every file still has its recorded size.
    /// </summary>
    public static HubLayoutResult Ensure(string dir, JsonObject config, IReadOnlyList<(string Name, long[] Shape)> tensors,
        long shardBytes, int seed = 0, Action<string>? progress = null)
    {
        var fingerprint = Fingerprint(config, tensors, shardBytes, seed);
        var cached = ReadLayout(dir);
        if (cached is not null && cached.Fingerprint == fingerprint && cached.FilesIntact(dir))
        {
            progress?.Invoke($"{dir}: up to date ({LayoutFile} matches), nothing written");
            return cached.ToResult(dir);
        }
        return Write(dir, config, tensors, shardBytes, seed, progress);
    }

    /// <summary>
    /// Writes <c>config.json</c>, <c>spiece.model</c>, the fp32 shards (split at <paramref name="shardBytes"/>), the index
    /// (when there is more than one shard) and, last, <c>layout.json</c>. Refuses a non-empty folder it did not write.
    /// </summary>
    public static HubLayoutResult Write(string dir, JsonObject config, IReadOnlyList<(string Name, long[] Shape)> tensors,
        long shardBytes, int seed = 0, Action<string>? progress = null)
    {
        var sw = Stopwatch.StartNew();
        dir = Path.GetFullPath(dir);
        var previous = ReadLayout(dir);
        if (Directory.Exists(dir) && previous is null && !File.Exists(Path.Combine(dir, WritingMarker))
            && Directory.EnumerateFileSystemEntries(dir).Any())
            throw new IOException($"'{dir}' is not empty and was not written by {nameof(HubLayoutFolder)} (no {LayoutFile}); refusing to overwrite it.");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, WritingMarker), "in progress\n");
        File.Delete(Path.Combine(dir, LayoutFile)); // the folder is incomplete from here until the new layout.json

        var shards = SplitShards(tensors, shardBytes);
        var names = Enumerable.Range(0, shards.Count).Select(i => ShardFileName(i, shards.Count)).ToList();
        var files = new Dictionary<string, long>(StringComparer.Ordinal);

        WriteText(dir, HfCheckpoint.ConfigFile, Sorted(config).ToJsonString(Indented) + "\n", files);
        var spiece = T5StyleSpieceModel();
        SafeTensorsFile.WriteAtomically(Path.Combine(dir, SpieceFile), spiece);
        files[SpieceFile] = spiece.LongLength;

        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        var fill = SyntheticWeights.Filler(seed);
        var written = new List<HubShard>();
        var dataSw = Stopwatch.StartNew();
        for (var i = 0; i < shards.Count; i++)
        {
            var entries = shards[i].Select(t => new SafeTensorEntry(t.Name, "F32", t.Shape)).ToList();
            var path = Path.Combine(dir, names[i]);
            var nextReport = 0L;
            var r = SafeTensorsStreamWriter.Write(path, entries, fill, meta, progress: progress is null ? null : (done, total) =>
            {
                if (done < nextReport && done < total) return;
                nextReport = done + Math.Max(total / 10, 1);
                progress($"{names[i]}: {done / 1e9:F2} / {total / 1e9:F2} GB");
            });
            var tensorBytes = entries.Sum(e => e.ByteCount);
            written.Add(new HubShard(names[i], r.FileBytes, tensorBytes, entries.Count));
            files[names[i]] = r.FileBytes;
            progress?.Invoke($"{names[i]}: {r.FileBytes:N0} bytes, {entries.Count} tensors in {r.Elapsed.TotalSeconds:F1} s ({r.MegabytesPerSecond:F0} MB/s)");
        }
        var dataElapsed = dataSw.Elapsed;
        var totalSize = written.Sum(s => s.TensorBytes);

        var index = Path.Combine(dir, HfCheckpoint.IndexFile);
        if (shards.Count > 1)
        {
            var map = new JsonObject();
            foreach (var (name, file) in shards.SelectMany((s, i) => s.Select(t => (t.Name, names[i]))).OrderBy(x => x.Item1, StringComparer.Ordinal))
                map[name] = file;
            var indexJson = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = totalSize }, ["weight_map"] = map };
            WriteText(dir, HfCheckpoint.IndexFile, indexJson.ToJsonString(Indented) + "\n", files);
        }
        else if (File.Exists(index)) File.Delete(index);

        // Files of an earlier layout that this one does not have (e.g. model-00001-of-00003.safetensors).
        if (previous is not null)
            foreach (var stale in previous.Files.Keys.Where(f => !files.ContainsKey(f) && f != LayoutFile))
            {
                var p = Path.Combine(dir, stale);
                if (Path.GetDirectoryName(Path.GetFullPath(p)) == dir && File.Exists(p)) File.Delete(p);
            }

        var layout = new Layout(LayoutFormat, Fingerprint(config, tensors, shardBytes, seed), seed, tensors.Count, totalSize,
            files, written, dataElapsed.TotalSeconds);
        SafeTensorsFile.WriteAtomically(Path.Combine(dir, LayoutFile), Encoding.UTF8.GetBytes(layout.ToJson().ToJsonString(Indented) + "\n"));
        File.Delete(Path.Combine(dir, WritingMarker));
        var result = new HubLayoutResult(dir, true, written, totalSize, tensors.Count, dataElapsed);
        progress?.Invoke($"{dir}: {result.ShardFileBytes:N0} bytes of shards in {dataElapsed.TotalSeconds:F1} s ({result.MegabytesPerSecond:F0} MB/s); total {sw.Elapsed.TotalSeconds:F1} s");
        return result;
    }

    /// <summary>The small T5-style Unigram <c>spiece.model</c> (pad 0, eos 1, unk 2, no bos; 1000 pieces) embedded in this assembly.</summary>
    public static byte[] T5StyleSpieceModel()
    {
        using var s = typeof(HubLayoutFolder).Assembly.GetManifestResourceStream(SpieceResource)
            ?? throw new InvalidOperationException($"resource '{SpieceResource}' is missing from {typeof(HubLayoutFolder).Assembly.GetName().Name}.");
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }

    // ---------------------------------------------------------------- layout.json

    private sealed record Layout(string Format, string Fingerprint, int Seed, int TensorCount, long TotalSize,
        IReadOnlyDictionary<string, long> Files, IReadOnlyList<HubShard> Shards, double WriteSeconds)
    {
        public bool FilesIntact(string dir) => Files.All(f =>
        {
            var info = new FileInfo(Path.Combine(dir, f.Key));
            return info.Exists && info.Length == f.Value;
        });

        public HubLayoutResult ToResult(string dir) => new(Path.GetFullPath(dir), false, Shards, TotalSize, TensorCount, TimeSpan.FromSeconds(WriteSeconds));

        public JsonObject ToJson()
        {
            var files = new JsonObject();
            foreach (var (k, v) in Files.OrderBy(f => f.Key, StringComparer.Ordinal)) files[k] = v;
            var shards = new JsonArray(Shards.Select(s => (JsonNode)new JsonObject
            {
                ["file"] = s.File, ["file_bytes"] = s.FileBytes, ["tensor_bytes"] = s.TensorBytes, ["tensors"] = s.TensorCount,
            }).ToArray());
            var mbps = WriteSeconds > 0 ? Shards.Sum(s => s.FileBytes) / 1e6 / WriteSeconds : 0;
            return new JsonObject
            {
                ["format"] = Format,
                ["fingerprint"] = Fingerprint,
                ["seed"] = Seed,
                ["tensor_count"] = TensorCount,
                ["total_size"] = TotalSize,
                ["files"] = files,
                ["shards"] = shards,
                ["write_seconds"] = Math.Round(WriteSeconds, 3),
                ["write_mb_per_second"] = Math.Round(mbps, 1),
                ["written_utc"] = DateTime.UtcNow.ToString("O"),
            };
        }
    }

    private static Layout? ReadLayout(string dir)
    {
        var path = Path.Combine(dir, LayoutFile);
        if (!File.Exists(path)) return null;
        try
        {
            var j = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            if (j["format"]?.GetValue<string>() != LayoutFormat) return null;
            var files = j["files"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<long>(), StringComparer.Ordinal);
            var shards = j["shards"]!.AsArray().Select(s => new HubShard(
                s!["file"]!.GetValue<string>(), s["file_bytes"]!.GetValue<long>(), s["tensor_bytes"]!.GetValue<long>(), s["tensors"]!.GetValue<int>())).ToList();
            return new Layout(LayoutFormat, j["fingerprint"]!.GetValue<string>(), j["seed"]!.GetValue<int>(), j["tensor_count"]!.GetValue<int>(),
                j["total_size"]!.GetValue<long>(), files, shards, j["write_seconds"]?.GetValue<double>() ?? 0);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            return null; // unreadable: treated as absent, so the folder is rewritten
        }
    }

    /// <summary>SHA-256 over everything that decides the bytes written: format, seed, config, tensor list, shard size, tokenizer.</summary>
    private static string Fingerprint(JsonObject config, IReadOnlyList<(string Name, long[] Shape)> tensors, long shardBytes, int seed)
    {
        var sb = new StringBuilder();
        sb.Append(LayoutFormat).Append('\n').Append(seed).Append('\n').Append(shardBytes).Append('\n');
        sb.Append(Sorted(config).ToJsonString()).Append('\n');
        foreach (var (name, shape) in tensors) sb.Append(name).Append(':').AppendJoin(',', shape).Append('\n');
        sb.Append(Convert.ToHexStringLower(SHA256.HashData(T5StyleSpieceModel())));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    private static void WriteText(string dir, string file, string text, Dictionary<string, long> files)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        SafeTensorsFile.WriteAtomically(Path.Combine(dir, file), bytes);
        files[file] = bytes.LongLength;
    }

    /// <summary>A deep copy with object keys sorted, as transformers writes JSON (<c>sort_keys=True</c>).</summary>
    private static JsonObject Sorted(JsonObject o)
    {
        var r = new JsonObject();
        foreach (var (k, v) in o.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            r[k] = v switch { JsonObject c => Sorted(c), null => null, _ => v.DeepClone() };
        return r;
    }
}
