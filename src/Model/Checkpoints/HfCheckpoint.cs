using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Scst.Model.Blip2;
using Scst.Model.SafeTensors;
using Scst.Model.T5;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Model.Checkpoints;

/// <summary>
/// Loads Hugging Face checkpoint folders (<c>config.json</c> + <c>model.safetensors</c>, or sharded
/// <c>model.safetensors.index.json</c>) into our modules by HF parameter name. Never reads pickle files.
/// Our own checkpoints are the same layout plus <c>model.safetensors.sha256</c>, verified when present.
/// </summary>
public static partial class HfCheckpoint
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";
    public const string ShaSuffix = ".sha256";

    /// <summary>Reads and parses <c>config.json</c> with errors naming the folder.</summary>
    public static JsonObject ReadConfig(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"checkpoint folder '{dir}' does not exist.");
        var path = Path.Combine(dir, ConfigFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint folder '{dir}' has no {ConfigFile}.", path);
        try
        {
            return JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException("empty");
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or InvalidDataException)
        {
            throw new InvalidDataException($"{path}: not a valid JSON object ({e.Message}).", e);
        }
    }

    /// <summary>The <c>model_type</c> of a folder's config ("t5", "blip-2").</summary>
    public static string ModelType(JsonObject config, string dir) =>
        config["model_type"]?.GetValue<string>() ?? throw new InvalidDataException($"{Path.Combine(dir, ConfigFile)}: no 'model_type' key.");

    /// <summary>All tensors of a folder (single file or shards), on the CPU; verifies a <c>.sha256</c> beside a file if present.</summary>
    public static Dictionary<string, Tensor> ReadWeights(string dir)
    {
        var single = Path.Combine(dir, WeightsFile);
        var index = Path.Combine(dir, IndexFile);
        if (File.Exists(single)) return ReadVerified(single, requireSha: false);
        if (File.Exists(index))
        {
            JsonObject map;
            try { map = JsonNode.Parse(File.ReadAllText(index))?["weight_map"]?.AsObject() ?? throw new InvalidDataException("no weight_map"); }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or InvalidDataException)
            { throw new InvalidDataException($"{index}: not a valid safetensors index ({e.Message}).", e); }
            var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var shard in map.Select(kv => kv.Value!.GetValue<string>()).Distinct())
            {
                var shardPath = Path.Combine(dir, shard);
                if (!File.Exists(shardPath)) throw new FileNotFoundException($"{index} names shard '{shard}', which does not exist.", shardPath);
                foreach (var (k, v) in ReadVerified(shardPath, requireSha: false)) result[k] = v;
            }
            var missing = map.Select(kv => kv.Key).Where(k => !result.ContainsKey(k)).ToList();
            if (missing.Count > 0) throw new InvalidDataException($"{index} maps {missing.Count} tensor(s) not found in their shards, e.g. '{missing[0]}'.");
            return result;
        }
        var pickles = Directory.EnumerateFiles(dir, "*.bin").Concat(Directory.EnumerateFiles(dir, "*.pt")).Select(Path.GetFileName).ToList();
        throw new FileNotFoundException(pickles.Count > 0
            ? $"checkpoint folder '{dir}' has only pickle weights ({string.Join(", ", pickles)}); only safetensors are loaded (convert with save_pretrained(safe_serialization=True))."
            : $"checkpoint folder '{dir}' has neither {WeightsFile} nor {IndexFile}.");
    }

    /// <summary>Reads a safetensors file after checking its SHA-256 against <c>file.sha256</c> (required or, if absent, skipped).</summary>
    public static Dictionary<string, Tensor> ReadVerified(string path, bool requireSha)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"weights file '{path}' does not exist.", path);
        var bytes = File.ReadAllBytes(path);
        var shaPath = path + ShaSuffix;
        if (File.Exists(shaPath))
        {
            var expected = File.ReadAllText(shaPath).Split([' ', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.ToLowerInvariant() ?? "";
            var actual = Convert.ToHexStringLower(SHA256.HashData(bytes));
            if (expected != actual)
                throw new InvalidDataException($"{path}: SHA-256 mismatch: the file hashes to {actual} but {Path.GetFileName(shaPath)} says {expected}; the checkpoint is corrupted or incomplete, refusing to load it.");
        }
        else if (requireSha)
        {
            throw new FileNotFoundException($"{path}: no {Path.GetFileName(shaPath)} beside it; refusing to load an unverified checkpoint.", shaPath);
        }
        return SafeTensorsFile.Deserialize(bytes, path).Tensors;
    }

    /// <summary>
    /// Copies <paramref name="tensors"/> into the module's parameters by name (after dropping <paramref name="ignorable"/> keys),
    /// refusing missing, unexpected and mis-shaped tensors with their names. Dtypes are converted to the parameter's.
    /// </summary>
    public static void LoadInto(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, Func<string, bool> ignorable, string source)
    {
        var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var missing = parameters.Keys.Where(k => !tensors.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var unexpected = tensors.Keys.Where(k => !parameters.ContainsKey(k) && !ignorable(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{source}: missing tensor '{missing[0]}'" + (missing.Count > 1 ? $" (and {missing.Count - 1} more: {string.Join(", ", missing.Skip(1).Take(5))}{(missing.Count > 6 ? ", ..." : "")})" : "") + ".");
        if (unexpected.Count > 0)
            throw new InvalidDataException($"{source}: unexpected tensor '{unexpected[0]}'" + (unexpected.Count > 1 ? $" (and {unexpected.Count - 1} more)" : "") + " matches no parameter of the model built from config.json.");
        foreach (var (name, p) in parameters)
        {
            var t = tensors[name];
            if (!t.shape.SequenceEqual(p.shape))
                throw new InvalidDataException($"{source}: tensor '{name}' has shape [{string.Join(", ", t.shape)}] but the model expects [{string.Join(", ", p.shape)}].");
        }
        using var _ = no_grad();
        foreach (var (name, p) in parameters) p.copy_(tensors[name].to(p.dtype));
    }

    [GeneratedRegex(@"^(language_model\.)?(encoder|decoder)\.embed_tokens\.weight$")]
    private static partial Regex EmbedAlias();
    [GeneratedRegex(@"^qformer\.encoder\.layer\.\d+\.(intermediate|output)\.")]
    private static partial Regex QFormerTextBranch();
    [GeneratedRegex(@"^vision_model\.encoder\.layers\.(\d+)\.self_attn\.q_bias$")]
    private static partial Regex VisionQBias();

    /// <summary>HF's rules for keys a folder may hold that have no parameter of their own here.</summary>
    private static bool Ignorable(string key, bool tied, string prefix) =>
        EmbedAlias().IsMatch(key)                                         // 4.x files repeat shared.weight per stack
        || (tied && key == prefix + "lm_head.weight")                      // a tied head is shared.weight
        || QFormerTextBranch().IsMatch(key) || key.StartsWith("qformer.embeddings.", StringComparison.Ordinal); // Q-Former text path, unused for captioning

    /// <summary>Loads a T5 folder (<c>model_type: t5</c>).</summary>
    public static T5ForConditionalGeneration LoadT5(string dir)
    {
        var config = ReadConfig(dir);
        var type = ModelType(config, dir);
        if (type != "t5") throw new InvalidDataException($"{Path.Combine(dir, ConfigFile)}: model_type is '{type}', expected 't5'.");
        var cfg = T5Config.FromJson(config, Path.Combine(dir, ConfigFile));
        var tensors = ReadWeights(dir);
        try
        {
            var model = new T5ForConditionalGeneration(cfg);
            LoadInto(model, tensors, k => Ignorable(k, cfg.TieWordEmbeddings, ""), dir);
            model.eval();
            return model;
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>Loads a BLIP-2 folder with a T5 language model (<c>model_type: blip-2</c>).</summary>
    public static Blip2T5 LoadBlip2T5(string dir)
    {
        var config = ReadConfig(dir);
        var type = ModelType(config, dir);
        if (type != "blip-2") throw new InvalidDataException($"{Path.Combine(dir, ConfigFile)}: model_type is '{type}', expected 'blip-2'.");
        var cfg = Blip2Config.FromJson(config, Path.Combine(dir, ConfigFile));
        var tensors = ReadWeights(dir);
        try
        {
            // transformers 4.x kept q_bias and v_bias apart (k has none); 5.x stores them as one qkv.bias.
            foreach (var key in tensors.Keys.ToList())
            {
                var m = VisionQBias().Match(key);
                if (!m.Success) continue;
                var prefix = key[..^"q_bias".Length];
                if (!tensors.TryGetValue(prefix + "v_bias", out var vb))
                    throw new InvalidDataException($"{dir}: tensor '{key}' has no matching '{prefix}v_bias'.");
                var qb = tensors[key];
                tensors[prefix + "qkv.bias"] = cat([qb, zeros_like(qb), vb]);
                tensors.Remove(key); tensors.Remove(prefix + "v_bias");
                qb.Dispose(); vb.Dispose();
            }
            var model = new Blip2T5(cfg);
            LoadInto(model, tensors, k => Ignorable(k, cfg.Text.TieWordEmbeddings, "language_model."), dir);
            model.eval();
            return model;
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>Loads whichever model a folder holds: a <see cref="T5ForConditionalGeneration"/> or a <see cref="Blip2T5"/>.</summary>
    public static nn.Module Load(string dir)
    {
        var type = ModelType(ReadConfig(dir), dir);
        return type switch
        {
            "t5" => LoadT5(dir),
            "blip-2" => LoadBlip2T5(dir),
            _ => throw new NotSupportedException($"{Path.Combine(dir, ConfigFile)}: model_type '{type}' is not supported (t5, blip-2 are)."),
        };
    }

    /// <summary>
    /// Saves a model as an HF-layout folder: <c>config.json</c>, <c>model.safetensors</c> and
    /// <c>model.safetensors.sha256</c>, each written atomically. Returns the SHA-256 of the weights.
    /// </summary>
    public static string Save(string dir, nn.Module model, JsonObject config, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Directory.CreateDirectory(dir);
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        var tensors = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        SafeTensorsFile.WriteAtomically(Path.Combine(dir, ConfigFile), System.Text.Encoding.UTF8.GetBytes(config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })));
        var weights = Path.Combine(dir, WeightsFile);
        var sha = SafeTensorsFile.Write(weights, tensors, meta);
        SafeTensorsFile.WriteAtomically(weights + ShaSuffix, System.Text.Encoding.ASCII.GetBytes($"{sha}  {WeightsFile}\n"));
        return sha;
    }

    /// <summary>Loads one of our checkpoints, requiring and verifying its SHA-256.</summary>
    public static nn.Module LoadVerified(string dir)
    {
        var weights = Path.Combine(dir, WeightsFile);
        if (!File.Exists(weights + ShaSuffix))
            throw new FileNotFoundException($"{weights}: no {WeightsFile}{ShaSuffix} beside it; refusing to load an unverified checkpoint.", weights + ShaSuffix);
        return Load(dir);
    }
}
