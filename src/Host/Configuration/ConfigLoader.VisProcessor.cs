using System.Globalization;
using Scst.Training.Configuration;
using Scst.Model.Data.Transforms;
using YamlDotNet.Core;

namespace Scst.Host.Configuration;

// datasets.<name>.vis_processor.{train,eval}: LAVIS's BLIP image processors (docs/configuration.md).
public static partial class ConfigLoader
{
    private readonly record struct TrainVisSource(Mark Where, bool NameGiven, bool ScaleGiven, bool StatsGiven);

    private sealed record VisProcessors(VisProcessorOptions Train, VisProcessorOptions Eval, TrainVisSource Source);

    /// <summary>
    /// vis_processor.{train,eval}. One image_size serves both (the model has one input size): a phase that omits it
    /// takes the other's, else <paramref name="defaultSize"/>; two different values are refused. min_scale/max_scale
    /// only exist for the random-crop train processors.
    /// </summary>
    private static VisProcessors ReadVisProcessors(YamlSection vp, int defaultSize, string defaultSizeSource)
    {
        var t = vp.Section("train");
        var e = vp.Section("eval");
        var trainName = t.GetString("name", VisProcessorOptions.BlipImageTrain, VisProcessorOptions.Names);
        // Evaluation and SCST rollouts must see fixed pixels: only the deterministic processor is allowed there.
        var evalName = e.GetString("name", VisProcessorOptions.BlipImageEval, VisProcessorOptions.BlipImageEval);

        var trainSize = t.GetOptionalInt("image_size", 8);
        var evalSize = e.GetOptionalInt("image_size", 8);
        if (trainSize is int ts && evalSize is int es && ts != es)
            e.Error("image_size", $"train image_size {ts} and eval image_size {es} differ; the model has one input size: set both to the same value");
        var size = evalSize ?? trainSize ?? defaultSize;
        if (trainSize is null) t.Resolve("image_size", size, evalSize is null ? defaultSizeSource : e.SourceOf("image_size") ?? ConfigTrace.Default);
        if (evalSize is null) e.Resolve("image_size", size, trainSize is null ? defaultSizeSource : t.SourceOf("image_size") ?? ConfigTrace.Default);

        var minScale = t.GetDouble("min_scale", 0.5, 0, 1, minExclusive: true);
        var maxScale = t.GetDouble("max_scale", 1.0, 0, 1, minExclusive: true);
        if (minScale > maxScale) t.Error("min_scale", $"min_scale ({minScale}) must not exceed max_scale ({maxScale})");
        if (!VisProcessorOptions.IsRandom(trainName))
            foreach (var key in new[] { "min_scale", "max_scale" })
                if (t.Has(key)) t.Error(key, $"{key} has no effect with {trainName} (no random crop): remove it, or use blip_image_train / blip2_image_train");
        foreach (var key in new[] { "min_scale", "max_scale" })
            if (e.Has(key)) e.Error(key, $"{key} belongs to the train processor (vis_processor.train); evaluation only resizes");

        var source = new TrainVisSource(t.Where, t.Has("name"), t.Has("min_scale") || t.Has("max_scale"), t.Has("mean") || t.Has("std"));
        var train = VisProcessorOptions.Create(trainName, size, minScale, maxScale, ReadTriple(t, "mean", false), ReadTriple(t, "std", true));
        var eval = VisProcessorOptions.Create(evalName, size, mean: ReadTriple(e, "mean", false), std: ReadTriple(e, "std", true));
        t.Finish();
        e.Finish();
        vp.Finish();
        return new VisProcessors(train, eval, source);
    }

    // Normalize's per-channel mean or std: 3 numbers; absent means BLIP's CLIP statistics.
    private static double[]? ReadTriple(YamlSection s, string key, bool positive)
    {
        var values = s.GetDoubleList(key);
        if (values is null)
        {
            s.Resolve(key, key == "mean" ? VisProcessorOptions.BlipMean : VisProcessorOptions.BlipStd, ConfigTrace.Default);
            return null;
        }
        if (values.Count != 3 || values.Any(v => !double.IsFinite(v) || (positive && v <= 0)))
        {
            s.Error(key, $"expected 3 numbers (R, G, B){(positive ? ", each > 0" : "")}, got [{string.Join(", ", values.Select(v => v.ToString(CultureInfo.InvariantCulture)))}]");
            return null;
        }
        return values.ToArray();
    }

    /// <summary>
    /// SCST generates the K captions of an image from the eval transform's pixels (they must see the same image), so
    /// vis_processor.train defaults to blip_image_eval there and anything that would only change CE's pixels is refused.
    /// </summary>
    private static IReadOnlyDictionary<string, DatasetOptions> ScstTrainVisProcessors(IReadOnlyDictionary<string, DatasetOptions> datasets,
        Dictionary<string, TrainVisSource> sources, List<ConfigError> errors, string file)
    {
        var result = new Dictionary<string, DatasetOptions>(StringComparer.Ordinal);
        foreach (var (name, d) in datasets)
        {
            result[name] = d;
            if (d.TrainVisProcessor is not { } t || d.EvalVisProcessor is not { } e || !sources.TryGetValue(name, out var src)) continue;
            void Refuse(string key, string what) => errors.Add(new ConfigError(file, src.Where.Line, src.Where.Column,
                $"datasets.{name}.vis_processor.train.{key}",
                $"{what}: SCST rolls out and trains on the eval transform's pixels (vis_processor.eval), so the K captions of an image see the same image; remove it or use blip_image_eval"));
            if (src.NameGiven && VisProcessorOptions.IsRandom(t.Name)) Refuse("name", $"{t.Name} has no effect in an SCST run");
            else if (src.ScaleGiven && VisProcessorOptions.IsRandom(t.Name)) Refuse("min_scale", "min_scale/max_scale have no effect in an SCST run");
            else if (src.StatsGiven && !(t.Mean.SequenceEqual(e.Mean) && t.Std.SequenceEqual(e.Std)))
                Refuse("mean", "a train mean/std different from eval's has no effect in an SCST run");
            result[name] = d with { TrainVisProcessor = e };
        }
        return result;
    }
}
