using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Scst.Model.SafeTensors;

namespace Scst.Model.Checkpoints;

/// <summary>
/// The weights of a Hugging Face folder — <c>model.safetensors</c>, or the shards a <c>model.safetensors.index.json</c>
/// names — opened for streaming: each tensor is read when asked for, never the whole folder. Never opens pickles.
/// </summary>
public sealed class WeightFolder : IDisposable
{
    private readonly List<SafeTensorsReader> _readers;

    public string Dir { get; }
    /// <summary>Every tensor with its shard, shard by shard in file order.</summary>
    public IReadOnlyList<(string Name, SafeTensorsReader Reader, SafeTensorsReader.Entry Entry)> Tensors { get; }
    public long TotalBytes => _readers.Sum(r => r.Length);

    private WeightFolder(string dir, List<SafeTensorsReader> readers, List<(string, SafeTensorsReader, SafeTensorsReader.Entry)> tensors)
    {
        Dir = dir; _readers = readers; Tensors = tensors;
    }

    public static WeightFolder Open(string dir)
    {
        var single = Path.Combine(dir, HfCheckpoint.WeightsFile);
        var index = Path.Combine(dir, HfCheckpoint.IndexFile);
        var readers = new List<SafeTensorsReader>();
        try
        {
            if (File.Exists(single))
            {
                HfCheckpoint.VerifySidecar(single, requireSha: false);
                readers.Add(SafeTensorsReader.Open(single));
                return new WeightFolder(dir, readers, [.. readers[0].Entries.Select(e => (e.Name, readers[0], e))]);
            }
            if (File.Exists(index))
            {
                var map = ReadIndex(index);
                var tensors = new List<(string, SafeTensorsReader, SafeTensorsReader.Entry)>();
                foreach (var shard in map.Values.Distinct())
                {
                    var shardPath = Path.Combine(dir, shard);
                    if (!File.Exists(shardPath)) throw new FileNotFoundException($"{index} names shard '{shard}', which does not exist.", shardPath);
                    HfCheckpoint.VerifySidecar(shardPath, requireSha: false);
                    var r = SafeTensorsReader.Open(shardPath);
                    readers.Add(r);
                    tensors.AddRange(r.Entries.Select(e => (e.Name, r, e)));
                }
                var present = tensors.Select(t => t.Item1).ToHashSet(StringComparer.Ordinal);
                var missing = map.Keys.Where(k => !present.Contains(k)).ToList();
                if (missing.Count > 0) throw new InvalidDataException($"{index} maps {missing.Count} tensor(s) not found in their shards, e.g. '{missing[0]}'.");
                return new WeightFolder(dir, readers, tensors);
            }
        }
        catch
        {
            foreach (var r in readers) r.Dispose();
            throw;
        }
        var pickles = Directory.EnumerateFiles(dir, "*.bin").Concat(Directory.EnumerateFiles(dir, "*.pt")).Select(Path.GetFileName).ToList();
        throw new FileNotFoundException(pickles.Count > 0
            ? $"checkpoint folder '{dir}' has only pickle weights ({string.Join(", ", pickles)}); only safetensors are loaded (convert with save_pretrained(safe_serialization=True))."
            : $"checkpoint folder '{dir}' has neither {HfCheckpoint.WeightsFile} nor {HfCheckpoint.IndexFile}.");
    }

    private static Dictionary<string, string> ReadIndex(string index)
    {
        try
        {
            var map = JsonNode.Parse(File.ReadAllText(index))?["weight_map"]?.AsObject() ?? throw new InvalidDataException("no weight_map");
            return map.ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>(), StringComparer.Ordinal);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or InvalidDataException or FormatException)
        {
            throw new InvalidDataException($"{index}: not a valid safetensors index ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Which pretrained folder this is, cheaply (a few MB read, not the 16 GB): SHA-256 over <c>config.json</c>, every
    /// tensor's name, dtype and shape, and the first 4 KB of every tensor's values. Two folders of one architecture (a
    /// base and its fine-tune) differ in the values of what was trained, so they differ here. Checkpoints and published
    /// weights carry it so they are never applied over another base.
    /// </summary>
    public static string Identity(string dir)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(File.ReadAllBytes(Path.Combine(dir, HfCheckpoint.ConfigFile)));
        using var folder = Open(dir);
        var prefix = new byte[4096];
        foreach (var (name, reader, entry) in folder.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"{name}:{entry.DType}:{string.Join(",", entry.Shape)};"));
            sha.AppendData(prefix.AsSpan(0, reader.ReadPrefix(entry, prefix)));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    public void Dispose()
    {
        foreach (var r in _readers) r.Dispose();
    }
}
