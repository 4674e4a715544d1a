using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scst.Model.SafeTensors;
using Scst.Training.Configuration;

namespace Scst.Training;

/// <summary>The run's outcome, also written to <c>summary.json</c>.</summary>
public sealed record TrainSummary(
    string Mode,
    long Updates,
    long SamplesConsumed,
    double ElapsedS,
    string FinalCheckpointSha256,
    string FinalCheckpoint,
    string? BestCheckpoint,
    long? BestStep,
    bool Completed,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> Metrics,
    IReadOnlyDictionary<string, object> Settings);

/// <summary><c>summary.json</c>: what a run did, with which settings, and where its checkpoints are.</summary>
public static class RunSummary
{
    /// <summary>The settings a reader needs to compare runs (seed, device, sizes, decoding, the SCST algorithm's choices).</summary>
    public static Dictionary<string, object> Settings(ScstConfig config, Policy policy, int trainImages, int trainSamples, string sampleUnit, int updatesPerEpoch)
    {
        var run = config.Run;
        var d = new Dictionary<string, object>
        {
            ["seed"] = run.Seed,
            ["device"] = policy.Device.ToString(),
            ["vocab_size"] = policy.Tokenizer.VocabSize,
            ["parameters"] = policy.Model.parameters().Sum(p => p.numel()),
            ["train_images"] = trainImages,
            ["eval_decoding"] = run.NumBeams > 1 ? $"beam{run.NumBeams}" : "greedy",
            ["best_metric"] = run.BestMetric,
            ["runner"] = run.Runner ?? "none",
            ["sample_unit"] = sampleUnit,
            ["train_samples"] = trainSamples,
            ["updates_per_epoch"] = updatesPerEpoch,
            ["beta2"] = run.Beta2,
            ["lr_layer_decay"] = run.LrLayerDecay,
        };
        if (config.IsScst)
        {
            var s = config.Scst;
            d["sampling"] = s.Sampling.Name();
            d["k"] = s.K;
            d["baseline"] = s.Baseline.Name();
            d["loss_normalization"] = s.LossNormalization.Name();
            d["reward"] = "cider_d";
            d["reward_df"] = "train";
            d["reward_counts_eos"] = s.Reward.EosToken;
            d["mode"] = s.Mode.Name();
        }
        return d;
    }

    /// <summary>Writes <c>RUN_DIR/summary.json</c> atomically; <paramref name="extra"/> adds driver-specific keys.</summary>
    public static void Write(string runDir, TrainSummary s, ParameterReport parameters, JsonObject? extra = null)
    {
        var json = new JsonObject
        {
            ["mode"] = s.Mode,
            ["updates"] = s.Updates,
            ["samples_consumed"] = s.SamplesConsumed,
            ["elapsed_s"] = Math.Round(s.ElapsedS, 3),
            ["completed"] = s.Completed,
            ["final_checkpoint"] = s.FinalCheckpoint,
            ["final_checkpoint_sha256"] = s.FinalCheckpointSha256,
            ["best_checkpoint"] = s.BestCheckpoint,
            ["best_step"] = s.BestStep,
            ["metrics"] = new JsonObject(s.Metrics.Select(kv => KeyValuePair.Create<string, JsonNode?>(kv.Key,
                new JsonObject(kv.Value.Select(m => KeyValuePair.Create<string, JsonNode?>(m.Key, m.Value)))))),
            ["settings"] = JsonSerializer.SerializeToNode(s.Settings),
            ["parameters"] = parameters.ToJson(),
        };
        if (extra is not null)
            foreach (var (k, v) in extra) json[k] = v?.DeepClone();
        SafeTensorsFile.WriteAtomically(Path.Combine(runDir, "summary.json"), Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
    }
}
