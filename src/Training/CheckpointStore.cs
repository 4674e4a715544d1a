using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scst.Model.SafeTensors;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>
/// A run's checkpoints: each one a single safetensors file (model, optimizer and generator tensors; the trainer's
/// scalar state as JSON in the metadata) written atomically, plus a small pointer file (<c>latest.json</c>,
/// <c>best.json</c>) naming it with its SHA-256. Loading verifies the hash and refuses anything that does not match.
/// </summary>
public sealed class CheckpointStore(string directory)
{
    public const string StateKey = "scst_trainer_state";
    public string Directory { get; } = directory;

    public sealed record Entry(string File, string Sha256, long Step, string Tag);

    /// <summary>
    /// Writes <paramref name="tensors"/> with <paramref name="state"/> and points <paramref name="tags"/> at it. Every
    /// file (checkpoint, .sha256, pointers) is written in full before any is renamed into place, pointers last: a write
    /// that fails (a full disk) leaves the previous checkpoint and its pointers as they were.
    /// </summary>
    public Entry Save(string name, IReadOnlyDictionary<string, Tensor> tensors, JsonObject state, params string[] tags)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var file = Path.Combine(Directory, name + ".safetensors");
        var sha = "";
        using var data = StagedFile.Write(file, fs => sha = SafeTensorsFile.WriteTo(fs, tensors, new Dictionary<string, string> { [StateKey] = state.ToJsonString() }));
        // The sidecar lets a file be used on its own (e.g. model.finetuned) and still be verified.
        using var sidecar = StagedFile.Write(file + ".sha256", System.Text.Encoding.ASCII.GetBytes($"{sha}  {Path.GetFileName(file)}\n"));
        var step = state["step"]?.GetValue<long>() ?? 0;
        var entries = tags.Select(tag => new Entry(Path.GetFileName(file), sha, step, tag)).ToList();
        var pointers = new List<StagedFile>();
        try
        {
            foreach (var e in entries) pointers.Add(StagedFile.Write(Path.Combine(Directory, e.Tag + ".json"), JsonSerializer.SerializeToUtf8Bytes(e)));
            data.Commit();
            sidecar.Commit();
            foreach (var p in pointers) p.Commit();
        }
        finally
        {
            foreach (var p in pointers) p.Dispose();
        }
        return entries.LastOrDefault() ?? new Entry(Path.GetFileName(file), sha, step, "");
    }

    /// <summary>The entry a tag points at, or null when the tag was never written.</summary>
    public Entry? Find(string tag)
    {
        var pointer = Path.Combine(Directory, tag + ".json");
        if (!File.Exists(pointer)) return null;
        try
        {
            return JsonSerializer.Deserialize<Entry>(File.ReadAllBytes(pointer))
                   ?? throw new InvalidDataException($"{pointer}: empty checkpoint pointer");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{pointer}: corrupt checkpoint pointer ({e.Message}); delete it to start over or restore it", e);
        }
    }

    public (Dictionary<string, Tensor> Tensors, JsonObject State, Entry Entry) Load(string tag, Func<string, bool>? include = null)
    {
        var entry = Find(tag) ?? throw new FileNotFoundException($"no '{tag}' checkpoint in {Directory}");
        var (tensors, state) = LoadFile(Path.Combine(Directory, entry.File), entry.Sha256, include);
        return (tensors, state, entry);
    }

    /// <summary>Loads a checkpoint file, checking its SHA-256 when one is given (or when a pointer beside it names it).</summary>
    public static (Dictionary<string, Tensor> Tensors, JsonObject State) LoadFile(string path, string? expectedSha256 = null, Func<string, bool>? include = null)
    {
        var (tensors, state, _) = LoadFileWithMetadata(path, expectedSha256, include);
        return (tensors, state);
    }

    /// <summary><see cref="LoadFile"/> with the file's whole <c>__metadata__</c>; only the tensors <paramref name="include"/> names are read.</summary>
    public static (Dictionary<string, Tensor> Tensors, JsonObject State, IReadOnlyDictionary<string, string> Metadata) LoadFileWithMetadata(string path, string? expectedSha256 = null, Func<string, bool>? include = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint '{path}' does not exist");
        if (expectedSha256 is not null)
        {
            var actual = SafeTensorsReader.Sha256OfFile(path);
            if (!string.Equals(actual, expectedSha256, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException(
                    $"checkpoint '{path}' is corrupt or was changed: SHA-256 {actual} does not match the recorded {expectedSha256}");
        }
        Dictionary<string, Tensor> tensors;
        IReadOnlyDictionary<string, string> meta;
        using (var reader = SafeTensorsReader.Open(path))
        {
            tensors = include is null ? reader.ReadAll()
                : reader.Entries.Where(e => include(e.Name)).ToDictionary(e => e.Name, reader.Read, StringComparer.Ordinal);
            meta = reader.Metadata;
        }
        var state = meta.TryGetValue(StateKey, out var json)
            ? JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException($"checkpoint '{path}': trainer state is not a JSON object")
            : new JsonObject();
        return (tensors, state, meta);
    }

    /// <summary>The hash recorded in <c>FILE.sha256</c>; a checkpoint without one is refused rather than used unverified.</summary>
    public static string ReadSidecar(string path)
    {
        var sidecar = path + ".sha256";
        if (!File.Exists(sidecar))
            throw new FileNotFoundException($"checkpoint '{path}' has no {Path.GetFileName(sidecar)} beside it; refusing to use an unverified checkpoint", sidecar);
        var text = File.ReadAllText(sidecar).Trim();
        var sha = text.Split(' ', 2)[0];
        if (sha.Length != 64 || !sha.All(Uri.IsHexDigit))
            throw new InvalidDataException($"{sidecar}: expected a SHA-256 hex digest, got '{text}'");
        return sha;
    }

    public static string Sha256Of(string path) => SafeTensorsReader.Sha256OfFile(path);
}
