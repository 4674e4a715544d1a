using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;
using Scst.Model.Blip2;
using Scst.Model.Checkpoints;
using Scst.Model.T5;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>The pretrained folder a model sits on: where it is and its identity (<see cref="WeightFolder.Identity"/>: config, tensor names and shapes, the first 4 KB of each tensor).</summary>
public sealed record PretrainedBase(string Path, string Identity)
{
    public const string MetadataKey = "scst_base";

    public JsonObject ToJson() => new() { ["path"] = Path, ["identity"] = Identity };

    /// <summary>Refuses weights made on another base (<paramref name="recorded"/>: the identity they carry, null when none).</summary>
    public void Check(string? recorded, string source)
    {
        if (recorded is null)
            throw new InvalidDataException($"{source}: holds no pretrained-base identity, so it cannot be applied over the pretrained folder '{Path}'; it was made by a run without model.load_pretrained");
        if (recorded != Identity)
            throw new InvalidDataException($"{source}: was made on another pretrained base (identity {recorded[..12]}…), not on '{Path}' ({Identity[..12]}…); point model.pretrained at the folder the checkpoint was trained from");
    }

    public static string? Recorded(JsonObject? state) => state?["base"]?["identity"]?.GetValue<string>();
}

/// <summary>
/// The captioning model as a run holds it: built from scratch (the demo; everything trains in fp32) or from a
/// pretrained folder in LAVIS's <c>blip2_t5</c> regime (frozen T5 in bf16, frozen ViT in <c>vit_precision</c>; Q-Former,
/// queries, projection and ln_vision train in fp32). On a pretrained base, checkpoints and weight updates carry only
/// what trains, stamped with the base's identity.
/// </summary>
public static class PolicyModel
{
    /// <summary>Builds the configured model on the CPU (move it to its device after); <c>Base</c> is null without a pretrained folder.</summary>
    public static (Blip2T5 Model, PretrainedBase? Base) Build(ModelOptions m, int vocabSize, int imageSize, int seed, Device device, ILogger log)
    {
        var (model, pretrained) = BuildCore(m, vocabSize, imageSize, seed, device, log);
        model.UseGradCheckpoint = m.UseGradCheckpoint;
        if (m.UseGradCheckpoint)
            log.LogInformation("use_grad_checkpoint: activations checkpointed per ViT layer, Q-Former layer and T5 block in the passes that " +
                "compute gradients (what has neither a trained parameter nor an input needing a gradient runs as is); backward runs each such block's forward once more");
        return (model, pretrained);
    }

    private static (Blip2T5 Model, PretrainedBase? Base) BuildCore(ModelOptions m, int vocabSize, int imageSize, int seed, Device device, ILogger log)
    {
        if (!m.LoadPretrained)
        {
            var model = BuildModel(m, vocabSize, imageSize, seed);
            if (m.FreezeVit)
                foreach (var p in model.VisionModel.parameters()) p.requires_grad = false;
            return (model, null);
        }
        var dir = m.Pretrained!;
        var folderConfig = Blip2Config.FromJson(HfCheckpoint.ReadConfig(dir), Path.Combine(dir, HfCheckpoint.ConfigFile));
        PretrainedChecks.Check(m, folderConfig, dir);
        if (folderConfig.Text.DenseActFn != m.FeedForwardActivation)
            log.LogInformation("model.feed_forward_activation: the T5 feed-forward computes {Act} over the folder's {Folder} (LAVIS's blip2_t5 sets dense_act_fn = gelu)",
                m.FeedForwardActivation, folderConfig.Text.DenseActFn);
        var identity = WeightFolder.Identity(dir);
        var vit = VitDType(m.VitPrecision, device, log);
        var options = Blip2LoadOptions.Lavis(m.FreezeVit, vit, imageSize, $"{identity}|{imageSize}|{vit}|{m.FreezeVit}|{m.FeedForwardActivation}|{device}")
            with { DenseActFn = m.FeedForwardActivation };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var lastLog = TimeSpan.Zero;
        var loaded = HfCheckpoint.LoadBlip2T5(dir, options with
        {
            Progress = (done, total) =>
            {
                if (clock.Elapsed - lastLog < TimeSpan.FromSeconds(10)) return;
                lastLog = clock.Elapsed;
                log.LogInformation("Loading {Dir}: {Done:F1} / {Total:F1} GB", dir, done / 1e9, total / 1e9);
            },
        });
        log.LogInformation("Loaded {Dir} in {Seconds:F1} s{Shared}", dir, clock.Elapsed.TotalSeconds,
            Blip2FrozenBase.Users(options.ShareKey!) > 1 ? " (frozen ViT and T5 shared with a model already loaded in this process)" : "");
        return (loaded, new PretrainedBase(Path.GetFullPath(dir), identity));
    }

    /// <summary>A freshly initialised BLIP2-T5 of the config's architecture (the demo); pretrained folders load through <see cref="Build"/>.</summary>
    public static Blip2T5 BuildModel(ModelOptions m, int vocabSize, int imageSize, int seed)
    {
        var a = m.Architecture ?? throw new InvalidOperationException("model.architecture is required when load_pretrained is false");
        var cfg = new Blip2Config
        {
            Vision = new Blip2VisionConfig
            {
                HiddenSize = a.VisionHidden, IntermediateSize = a.VisionMlp, NumHiddenLayers = a.VisionLayers,
                NumAttentionHeads = a.VisionHeads, ImageSize = imageSize, PatchSize = a.PatchSize,
            },
            QFormer = new Blip2QFormerConfig
            {
                HiddenSize = a.QformerHidden, IntermediateSize = a.QformerIntermediate, NumHiddenLayers = a.QformerLayers,
                NumAttentionHeads = a.QformerHeads, CrossAttentionFrequency = a.CrossAttentionFrequency,
                EncoderHiddenSize = a.VisionHidden, HiddenDropoutProb = a.DropoutRate, AttentionProbsDropoutProb = a.DropoutRate,
            },
            Text = new T5Config
            {
                VocabSize = vocabSize, DModel = a.DModel, DKv = a.DKv, DFf = a.DFf, NumLayers = a.EncoderLayers,
                NumDecoderLayers = a.DecoderLayers, NumHeads = a.NumHeads,
                RelativeAttentionNumBuckets = a.RelativeAttentionNumBuckets, RelativeAttentionMaxDistance = a.RelativeAttentionMaxDistance,
                DropoutRate = a.DropoutRate, FeedForwardProj = "gated-gelu",
                // LAVIS computes the gated FFN with exact gelu, HF with gelu_new: the config chooses.
                DenseActFn = m.FeedForwardActivation, IsGatedAct = true,
                TieWordEmbeddings = false, ScaleDecoderOutputs = false,
            },
            NumQueryTokens = a.NumQueryTokens,
        };
        var model = new Blip2T5(cfg);
        using var g = new Generator((ulong)seed);
        model.InitWeights(g);
        return model;
    }

    /// <summary><c>run.amp</c> and <c>run.amp_dtype</c>: the autocast matmul dtype (null without amp), logged with the reason.</summary>
    public static ScalarType? AmpDType(RunOptions run, Device device, ILogger log)
    {
        if (!run.Amp) return null;
        var (dtype, why) = Scst.Model.Precision.Autocast.Resolve(run.AmpDType, device);
        log.LogInformation("amp: matmuls in {DType} ({Why}); master weights, norms, losses and log-probs in fp32", dtype, why);
        return dtype;
    }

    /// <summary>LAVIS's <c>vit_precision</c>: fp16 where the device computes it (CUDA); on the CPU fp16 is held as bf16.</summary>
    public static ScalarType VitDType(string precision, Device device, ILogger log) => precision switch
    {
        "fp32" => ScalarType.Float32,
        "bf16" => ScalarType.BFloat16,
        _ when device.type == TorchSharp.DeviceType.CUDA => ScalarType.Float16,
        _ => LogCpuFp16(log),
    };

    private static ScalarType LogCpuFp16(ILogger log)
    {
        log.LogInformation("model.vit_precision fp16: the CPU has no fp16 matmuls, so the frozen ViT is held in bf16 (same memory)");
        return ScalarType.BFloat16;
    }

    /// <summary>The weights a checkpoint or an update carries ("model."-prefixed): what trains on a pretrained base, else every parameter.</summary>
    public static IEnumerable<(string Name, Tensor Parameter)> Carried(Blip2T5 model, PretrainedBase? pretrained) =>
        model.named_parameters().Where(p => pretrained is null || p.parameter.requires_grad).Select(p => ("model." + p.name, (Tensor)p.parameter));

    /// <summary>
    /// Applies "model."-prefixed tensors: on a pretrained base every trainable parameter must be there (frozen ones
    /// may be), and <paramref name="recordedBase"/> must be this base; without one, every parameter must be there.
    /// </summary>
    public static void Apply(Blip2T5 model, IReadOnlyDictionary<string, Tensor> tensors, PretrainedBase? pretrained, string? recordedBase, string source)
    {
        pretrained?.Check(recordedBase, source);
        var weights = tensors.Where(kv => kv.Key.StartsWith("model.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key["model.".Length..], kv => kv.Value);
        if (pretrained is null) { HfCheckpoint.LoadInto(model, weights, _ => false, source); return; }
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToHashSet(StringComparer.Ordinal);
        HfCheckpoint.LoadInto(model, weights, _ => false, source, trainable.Contains);
    }

    /// <summary>Parameter counts and bytes per dtype: what the run trains and what it only holds.</summary>
    public static ParameterReport Report(Blip2T5 model)
    {
        long total = 0, trainable = 0;
        var bytes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var (_, p) in model.named_parameters())
        {
            var n = p.numel();
            total += n;
            if (p.requires_grad) trainable += n;
            var key = p.dtype.ToString();
            bytes[key] = bytes.GetValueOrDefault(key) + n * p.ElementSize;
        }
        return new ParameterReport(total, trainable, bytes);
    }
}

public sealed record ParameterReport(long Total, long Trainable, IReadOnlyDictionary<string, long> BytesByDType)
{
    public long Frozen => Total - Trainable;
    public JsonObject ToJson() => new() { ["total"] = Total, ["trainable"] = Trainable, ["frozen"] = Frozen };
    public override string ToString() =>
        $"parameters: {Total:N0} total, {Trainable:N0} trainable, {Frozen:N0} frozen; held as " +
        string.Join(", ", BytesByDType.Select(kv => $"{kv.Key} {kv.Value / 1e9:F2} GB"));
}
