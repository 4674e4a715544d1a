using System.Text.Json.Nodes;
using Scst.Model.Blip2;
using Scst.Model.SafeTensors;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>Copies of the policy's parameters ("model."-prefixed names), owned by one receiver, which disposes them after loading.</summary>
public sealed record PolicySnapshot(IReadOnlyList<(string Name, Tensor Tensor)> Parameters) : IDisposable
{
    public void Dispose()
    {
        foreach (var (_, t) in Parameters) t.Dispose();
    }
}

/// <summary>
/// The policy's weights on their way between a learner and its replicas: as a safetensors file (other processes) or as
/// an in-memory snapshot (replicas in the learner's process). On a pretrained base only what trains travels, stamped
/// with the base's identity; the frozen base stays where it is.
/// </summary>
public static class PolicyWeights
{
    /// <summary>
    /// The policy's weights alone (no optimizer), as one safetensors file; returns its SHA-256. With
    /// <paramref name="linearDType"/> (the autocast matmul dtype rollouts compute in, e.g. bf16 under amp) the weights
    /// and biases of linear layers go in that dtype: autocast casts them to it before every use, so a replica loading
    /// them computes exactly what it would from the full-precision ones, from half the bytes. Everything else (norms,
    /// embeddings, query tokens) keeps its own dtype.
    /// </summary>
    public static string Export(Blip2T5 model, PretrainedBase? pretrained, string path, ScalarType? linearDType = null)
    {
        using var scope = NewDisposeScope();
        var narrow = linearDType is { } d ? AutocastLinearParameters(model) : null;
        var tensors = PolicyModel.Carried(model, pretrained).ToDictionary(p => p.Name,
            p => narrow is not null && narrow.Contains(p.Name) && p.Parameter.dtype != linearDType ? p.Parameter.detach().to(linearDType!.Value).cpu() : p.Parameter.detach().cpu(),
            StringComparer.Ordinal);
        var meta = pretrained is null ? null : new Dictionary<string, string> { [PretrainedBase.MetadataKey] = pretrained.Identity };
        return SafeTensorsFile.Write(path, tensors, meta);
    }

    /// <summary>"model."-prefixed names of the weights and biases of the model's linear layers (what <c>Autocast.Linear</c> casts).</summary>
    public static HashSet<string> AutocastLinearParameters(Blip2T5 model)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, module) in model.named_modules())
            if (module is TorchSharp.Modules.Linear)
                foreach (var (p, _) in module.named_parameters(recurse: false)) names.Add($"model.{name}.{p}");
        return names;
    }

    /// <summary>Loads weights written by <see cref="Export"/> (narrower tensors are widened to the parameters' dtype),
    /// refusing a file whose SHA-256 differs (null: the caller verified it as it wrote it).</summary>
    public static void Load(Blip2T5 model, PretrainedBase? pretrained, string path, string? sha256)
    {
        var (tensors, _, meta) = CheckpointStore.LoadFileWithMetadata(path, sha256);
        try { PolicyModel.Apply(model, tensors, pretrained, meta.GetValueOrDefault(PretrainedBase.MetadataKey), path); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>Loads weights written by <see cref="Export"/> from their bytes in memory (a fetched file whose every
    /// chunk was verified as it arrived); <paramref name="source"/> names them in errors.</summary>
    public static void Load(Blip2T5 model, PretrainedBase? pretrained, SegmentedBuffer payload, string source)
    {
        Dictionary<string, Tensor> tensors;
        string? recordedBase;
        using (var reader = SafeTensorsReader.Open(payload, source))
        {
            tensors = reader.ReadAll();
            recordedBase = reader.Metadata.GetValueOrDefault(PretrainedBase.MetadataKey);
        }
        try { PolicyModel.Apply(model, tensors, pretrained, recordedBase, source); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>
    /// A copy of the policy's parameters on its device, for a replica in this process (no file, no chunks). The tensors
    /// belong to no dispose scope: whoever receives the snapshot owns them (<see cref="LoadSnapshot"/> disposes them).
    /// </summary>
    public static PolicySnapshot Snapshot(Blip2T5 model, PretrainedBase? pretrained)
    {
        using var _ = no_grad();
        var parameters = new List<(string, Tensor)>();
        foreach (var (name, p) in PolicyModel.Carried(model, pretrained)) parameters.Add((name, p.detach().clone().DetachFromDisposeScope()));
        return new PolicySnapshot(parameters);
    }

    /// <summary>Loads a <see cref="PolicySnapshot"/> of the same architecture (every parameter, by name and shape), then disposes it.</summary>
    public static void LoadSnapshot(Blip2T5 model, PretrainedBase? pretrained, PolicySnapshot snapshot, string source)
    {
        using (snapshot)
            PolicyModel.Apply(model, snapshot.Parameters.ToDictionary(p => p.Name, p => p.Tensor, StringComparer.Ordinal), pretrained, pretrained?.Identity, source);
    }

    /// <summary>
    /// Model weights from one of our checkpoints: a pointer (<c>best.json</c>) or a <c>.safetensors</c> file with its
    /// <c>.sha256</c>. Its optimizer moments (twice the model) are not read.
    /// </summary>
    public static void LoadFromCheckpoint(Blip2T5 model, string path, PretrainedBase? pretrained)
    {
        Dictionary<string, Tensor> tensors;
        JsonObject state;
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            var store = new CheckpointStore(Path.GetDirectoryName(Path.GetFullPath(path))!);
            (tensors, state, _) = store.Load(Path.GetFileNameWithoutExtension(path), ModelTensor);
        }
        else (tensors, state) = CheckpointStore.LoadFile(path, CheckpointStore.ReadSidecar(path), ModelTensor);
        try { PolicyModel.Apply(model, tensors, pretrained, PretrainedBase.Recorded(state), path); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>The model's tensors of a checkpoint (not its "optim." moments).</summary>
    public static bool ModelTensor(string name) => name.StartsWith("model.", StringComparison.Ordinal);
}
