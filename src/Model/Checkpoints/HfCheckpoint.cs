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

    /// <summary>All tensors of a folder (single file or shards), on the CPU. For small folders; models load by streaming.</summary>
    public static Dictionary<string, Tensor> ReadWeights(string dir)
    {
        using var folder = WeightFolder.Open(dir);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, reader, entry) in folder.Tensors) result[name] = reader.Read(entry);
        return result;
    }

    /// <summary>Checks a file against the SHA-256 in <c>file.sha256</c>, streaming it (any size).</summary>
    public static void VerifySidecar(string path, bool requireSha)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"weights file '{path}' does not exist.", path);
        var shaPath = path + ShaSuffix;
        if (File.Exists(shaPath))
        {
            var expected = File.ReadAllText(shaPath).Split([' ', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.ToLowerInvariant() ?? "";
            var actual = SafeTensorsReader.Sha256OfFile(path);
            if (expected != actual)
                throw new InvalidDataException($"{path}: SHA-256 mismatch: the file hashes to {actual} but {Path.GetFileName(shaPath)} says {expected}; the checkpoint is corrupted or incomplete, refusing to load it.");
        }
        else if (requireSha)
        {
            throw new FileNotFoundException($"{path}: no {Path.GetFileName(shaPath)} beside it; refusing to load an unverified checkpoint.", shaPath);
        }
    }

    /// <summary>
    /// Copies <paramref name="tensors"/> into the module's parameters by name (after dropping <paramref name="ignorable"/> keys),
    /// refusing unexpected and mis-shaped tensors and missing ones (those <paramref name="required"/> names; all by default)
    /// with their names. Dtypes are converted to the parameter's.
    /// </summary>
    public static void LoadInto(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, Func<string, bool> ignorable, string source,
        Func<string, bool>? required = null)
    {
        var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var missing = parameters.Keys.Where(k => !tensors.ContainsKey(k) && (required?.Invoke(k) ?? true)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var unexpected = tensors.Keys.Where(k => !parameters.ContainsKey(k) && !ignorable(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{source}: missing tensor '{missing[0]}'" + (missing.Count > 1 ? $" (and {missing.Count - 1} more: {string.Join(", ", missing.Skip(1).Take(5))}{(missing.Count > 6 ? ", ..." : "")})" : "") + ".");
        if (unexpected.Count > 0)
            throw new InvalidDataException($"{source}: unexpected tensor '{unexpected[0]}'" + (unexpected.Count > 1 ? $" (and {unexpected.Count - 1} more)" : "") + " matches no parameter of the model built from config.json.");
        var present = parameters.Where(kv => tensors.ContainsKey(kv.Key)).ToList();
        foreach (var (name, p) in present)
        {
            var t = tensors[name];
            if (!t.shape.SequenceEqual(p.shape))
                throw new InvalidDataException($"{source}: tensor '{name}' has shape [{string.Join(", ", t.shape)}] but the model expects [{string.Join(", ", p.shape)}].");
        }
        using var _ = no_grad();
        foreach (var (name, p) in present) p.copy_(tensors[name]);
    }

    [GeneratedRegex(@"^(language_model\.)?(encoder|decoder)\.embed_tokens\.weight$")]
    private static partial Regex EmbedAlias();
    [GeneratedRegex(@"^qformer\.encoder\.layer\.\d+\.(intermediate|output)\.")]
    private static partial Regex QFormerTextBranch();
    [GeneratedRegex(@"^vision_model\.encoder\.layers\.(\d+)\.self_attn\.qkv\.bias$")]
    private static partial Regex VisionQkvBias();

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
        using var folder = WeightFolder.Open(dir);
        var model = new T5ForConditionalGeneration(cfg);
        try
        {
            Stream(model, folder, k => Ignorable(k, cfg.TieWordEmbeddings, ""), _ => false, null);
            model.eval();
            return model;
        }
        catch { model.Dispose(); throw; }
    }

    /// <summary>Loads a BLIP-2 folder with a T5 language model (<c>model_type: blip-2</c>), every part in fp32.</summary>
    public static Blip2T5 LoadBlip2T5(string dir) => LoadBlip2T5(dir, new Blip2LoadOptions());

    /// <summary>
    /// Loads a BLIP-2 folder with a T5 language model tensor by tensor, each converted straight to the dtype its part is
    /// held in (<paramref name="o"/>): no full fp32 copy of the model ever exists. Position embeddings are interpolated
    /// when <see cref="Blip2LoadOptions.ImageSize"/> differs from the checkpoint's; frozen parts already loaded by another
    /// model with the same <see cref="Blip2LoadOptions.ShareKey"/> are shared, not read again.
    /// </summary>
    public static Blip2T5 LoadBlip2T5(string dir, Blip2LoadOptions o)
    {
        if (o.ShareKey is null) return LoadBlip2T5Core(dir, o);
        // Two replicas starting together must not both load the base: the second waits and shares the first's.
        lock (SharedLoads) return LoadBlip2T5Core(dir, o);
    }

    private static readonly object SharedLoads = new();

    private static Blip2T5 LoadBlip2T5Core(string dir, Blip2LoadOptions o)
    {
        var config = ReadConfig(dir);
        var type = ModelType(config, dir);
        if (type != "blip-2") throw new InvalidDataException($"{Path.Combine(dir, ConfigFile)}: model_type is '{type}', expected 'blip-2'.");
        var cfg = Blip2Config.FromJson(config, Path.Combine(dir, ConfigFile));
        if (o.DenseActFn is { } act) cfg = cfg with { Text = cfg.Text with { DenseActFn = act } };
        var checkpointGrid = cfg.Vision.ImageSize / cfg.Vision.PatchSize;
        if (o.ImageSize is int size)
        {
            if (size % cfg.Vision.PatchSize != 0)
                throw new InvalidDataException($"image_size {size} is not a multiple of the checkpoint's patch_size {cfg.Vision.PatchSize} ({Path.Combine(dir, ConfigFile)}).");
            cfg = cfg with { Vision = cfg.Vision with { ImageSize = size } };
        }
        var grid = cfg.Vision.ImageSize / cfg.Vision.PatchSize;
        using var folder = WeightFolder.Open(dir);

        var shared = o.ShareKey is null ? null : Blip2FrozenBase.Acquire(o.ShareKey);
        // The frozen parts are created directly in the dtype they are held in: no fp32 copy of them ever exists.
        cfg = cfg with { Vision = cfg.Vision with { TorchDType = o.VisionDType }, Text = cfg.Text with { TorchDType = o.TextDType } };
        var model = new Blip2T5(cfg, shared);
        try
        {
            bool SharedPart(string name) =>
                (shared?.VisionTrunk is not null && (name.StartsWith("vision_model.embeddings.", StringComparison.Ordinal) || name.StartsWith("vision_model.encoder.", StringComparison.Ordinal)))
                || (shared?.LanguageModel is not null && name.StartsWith("language_model.", StringComparison.Ordinal));
            // transformers 5.x stores the ViT's q_bias and v_bias (keys have none) as one qkv.bias with a zero middle.
            var pendingBias = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            Tensor? Transform(string name, Tensor t)
            {
                if (VisionQkvBias().IsMatch(name))
                {
                    using (t)
                    {
                        var third = t.shape[0] / 3;
                        if (t.narrow(0, third, third).abs().max().item<float>() != 0)
                            throw new InvalidDataException($"{dir}: tensor '{name}' has a non-zero key bias; BLIP-2's ViT has none (q_bias and v_bias only).");
                        var prefix = name[..^"qkv.bias".Length];
                        pendingBias[prefix + "v_bias"] = t.narrow(0, 2 * third, third).clone();
                        return t.narrow(0, 0, third).clone();
                    }
                }
                if (name == "vision_model.embeddings.position_embedding" && grid != checkpointGrid)
                    using (t) return PositionEmbeddingInterpolation.Interpolate(t, grid);
                return t;
            }
            string Target(string name) => VisionQkvBias().IsMatch(name) ? name[..^"qkv.bias".Length] + "q_bias" : name;
            Stream(model, folder, k => Ignorable(k, cfg.Text.TieWordEmbeddings, "language_model."), SharedPart, Transform, Target, o.Progress,
                extra: pendingBias);
            if (o.FreezeVision)
            {
                foreach (var p in model.VisionModel.Trunk.Embeddings.parameters()) p.requires_grad = false;
                foreach (var p in model.VisionModel.Trunk.Encoder.parameters()) p.requires_grad = false;
            }
            if (o.FreezeText)
                foreach (var p in model.LanguageModel.parameters()) p.requires_grad = false;
            model.eval();
            if (o.ShareKey is not null && shared is null && (o.FreezeVision || o.FreezeText))
                model.ShareFrozen(o.ShareKey, o.FreezeVision, o.FreezeText);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Streams a folder's tensors into <paramref name="module"/>'s parameters by name: each tensor is read, mapped
    /// (<paramref name="transform"/> may hold it back and return null, or return another tensor), shape-checked and copied
    /// into its parameter's dtype, then released. Missing, unexpected and mis-shaped tensors are refused with their names.
    /// </summary>
    private static void Stream(nn.Module module, WeightFolder folder, Func<string, bool> ignorable, Func<string, bool> skip,
        Func<string, Tensor, Tensor?>? transform, Func<string, string>? target = null, Action<long, long>? progress = null,
        Dictionary<string, Tensor>? extra = null)
    {
        var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var unexpected = folder.Tensors.Select(t => t.Name).Where(k => !ignorable(k) && !skip(k) && !parameters.ContainsKey(target?.Invoke(k) ?? k))
            .OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
            throw new InvalidDataException($"{folder.Dir}: unexpected tensor '{unexpected[0]}'" + (unexpected.Count > 1 ? $" (and {unexpected.Count - 1} more)" : "") + " matches no parameter of the model built from config.json.");
        var expected = parameters.Keys.Where(k => !skip(k)).ToHashSet(StringComparer.Ordinal);
        var present = folder.Tensors.Select(t => target?.Invoke(t.Name) ?? t.Name).ToHashSet(StringComparer.Ordinal);
        // A tensor the transform splits in two (5.x qkv.bias) also provides the second part's name.
        foreach (var t in folder.Tensors.Where(t => VisionQkvBias().IsMatch(t.Name))) present.Add(t.Name[..^"qkv.bias".Length] + "v_bias");
        var missing = expected.Where(k => !present.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{folder.Dir}: missing tensor '{missing[0]}'" + (missing.Count > 1 ? $" (and {missing.Count - 1} more: {string.Join(", ", missing.Skip(1).Take(5))}{(missing.Count > 6 ? ", ..." : "")})" : "") + ".");
        using var _ = no_grad();
        long done = 0, total = folder.Tensors.Sum(t => t.Entry.Bytes);
        foreach (var (name, reader, entry) in folder.Tensors)
        {
            done += entry.Bytes;
            if (ignorable(name) || skip(name)) continue;
            var t = reader.Read(entry);
            var mapped = transform is null ? t : transform(name, t);
            if (mapped is null) continue;
            using (mapped)
            {
                var key = target?.Invoke(name) ?? name;
                var p = parameters[key];
                if (!mapped.shape.SequenceEqual(p.shape))
                    throw new InvalidDataException($"{folder.Dir}: tensor '{key}' has shape [{string.Join(", ", mapped.shape)}] but the model expects [{string.Join(", ", p.shape)}].");
                p.copy_(mapped);
            }
            progress?.Invoke(done, total);
            if (extra is null) continue;
            foreach (var (k, x) in extra.ToList())
                using (x)
                {
                    if (!x.shape.SequenceEqual(parameters[k].shape))
                        throw new InvalidDataException($"{folder.Dir}: tensor '{k}' has shape [{string.Join(", ", x.shape)}] but the model expects [{string.Join(", ", parameters[k].shape)}].");
                    parameters[k].copy_(x);
                    extra.Remove(k);
                }
        }
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
