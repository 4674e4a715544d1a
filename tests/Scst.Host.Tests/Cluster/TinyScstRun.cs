using System.Text;
using System.Text.Json;
using Scst.Model.Data.Shapes;

namespace Scst.Host.Tests.Cluster;

/// <summary>
/// A tiny SCST run for process tests: shapes dataset (train 200 / val 50 / test 50, 32-px images), a BLIP2-T5 with
/// d = 32 and one layer per stack, K = 3 samples, leave-one-out baseline, dropout 0 (so runs are bit-reproducible).
/// </summary>
public static class TinyScstRun
{
    static readonly object Gate = new();
    static string? _dataset;

    /// <summary>The dataset is generated once per test process, before any node starts, so nodes never race to write it.</summary>
    public static string Dataset
    {
        get
        {
            lock (Gate)
            {
                if (_dataset is not null) return _dataset;
                var dir = Path.Combine(Path.GetTempPath(), "scst-chaos-data", $"shapes-{Environment.ProcessId}");
                if (!File.Exists(Path.Combine(dir, ShapesDatasetWriter.DatasetFileName)))
                    ShapesDatasetWriter.Write(dir, new ShapesDatasetOptions(7, 200, 50, 50, 32));
                return _dataset = dir;
            }
        }
    }

    public static string NewDir(string name)
    {
        var d = Path.Combine(Path.GetTempPath(), "scst-chaos", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Writes the config; batch 25 × accum 2 = 50 images per update, so one epoch is 4 updates.</summary>
    public static string WriteConfig(string dir, int maxIters, int checkpointEvery, string mode = "sync", int evalEvery = 8, int maxStaleness = 2,
        int? itersPerInnerEpoch = null)
    {
        // With itersPerInnerEpoch: LAVIS's runner_iter, max_iters counting micro-batches.
        var length = itersPerInnerEpoch is int inner ? $"runner: runner_iter\n  max_iters: {maxIters}\n  iters_per_inner_epoch: {inner}" : $"max_iters: {maxIters}";
        var yaml = $$"""
            model:
              arch: blip2_t5
              load_pretrained: false
              load_finetuned: false
              prompt: ""
              max_txt_len: 16
              tokenizer: {type: word, min_freq: 1}
              architecture:
                patch_size: 16
                vision_hidden: 32
                vision_layers: 1
                vision_heads: 2
                vision_mlp: 64
                num_query_tokens: 4
                qformer_hidden: 32
                qformer_layers: 1
                qformer_heads: 2
                qformer_intermediate: 64
                cross_attention_frequency: 1
                d_model: 32
                d_kv: 16
                d_ff: 64
                num_heads: 2
                encoder_layers: 1
                decoder_layers: 1
                relative_attention_num_buckets: 8
                relative_attention_max_distance: 16
                dropout_rate: 0.0
            datasets:
              shapes:
                build_info: {images: {{Dataset}}}
                vis_processor:
                  train: {name: blip_image_eval, image_size: 32}
                  eval: {name: blip_image_eval, image_size: 32}
                text_processor:
                  train: {name: blip_caption, max_words: 20}
                  eval: {name: blip_caption, max_words: 20}
                shapes: {seed: 7, train: 200, val: 50, test: 50}
            run:
              lr_sched: constant_lr
              init_lr: 1e-3
              min_lr: 1e-3
              warmup_lr: 1e-4
              warmup_steps: 2
              weight_decay: 0.0
              {{length}}
              batch_size_train: 25
              batch_size_eval: 50
              accum_grad_iters: 2
              max_grad_norm: 1.0
              max_len: 12
              min_len: 1
              num_beams: 1
              seed: 42
              output_dir: {{Path.Combine(dir, "out")}}
              eval_every: {{evalEvery}}
              eval_max_images: 20
              checkpoint_every: {{checkpointEvery}}
              device: cpu
              threads: 1
            scst:
              sampling: sample
              sample_n: 3
              baseline: leave_one_out
              loss_normalization: length_mean
              reward: {metric: cider_d, df: train, eos_token: false}
              mode: {{mode}}
              max_staleness: {{maxStaleness}}
              is_clip: 2.0
            """;
        var path = Path.Combine(dir, "tiny_scst.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    /// <summary>Largest |a − b| over the model.* tensors of two runs' latest checkpoints (raw safetensors, float32).</summary>
    public static double MaxWeightDelta(string runA, string runB)
    {
        var a = ReadModelTensors(LatestCheckpoint(runA));
        var b = ReadModelTensors(LatestCheckpoint(runB));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        double max = 0;
        foreach (var (k, x) in a)
        {
            var y = b[k];
            Assert.Equal(x.Length, y.Length);
            for (var i = 0; i < x.Length; i++) max = Math.Max(max, Math.Abs((double)x[i] - y[i]));
        }
        return max;
    }

    public static string LatestCheckpoint(string run)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(run, "checkpoints", "latest.json")));
        return Path.Combine(run, "checkpoints", doc.RootElement.GetProperty("File").GetString()!);
    }

    static Dictionary<string, float[]> ReadModelTensors(string file)
    {
        var bytes = File.ReadAllBytes(file);
        var n = (int)BitConverter.ToUInt64(bytes, 0);
        using var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, n));
        var result = new Dictionary<string, float[]>();
        foreach (var p in header.RootElement.EnumerateObject())
        {
            if (!p.Name.StartsWith("model.", StringComparison.Ordinal)) continue;
            Assert.Equal("F32", p.Value.GetProperty("dtype").GetString());
            var off = p.Value.GetProperty("data_offsets");
            var (s, e) = (off[0].GetInt32(), off[1].GetInt32());
            result[p.Name] = new ReadOnlySpan<byte>(bytes, 8 + n + s, e - s).ToArray() is var raw
                ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw).ToArray() : [];
        }
        return result;
    }

    /// <summary>The highest SCST update logged to metrics.jsonl so far (0 when none).</summary>
    public static long LastUpdate(string run)
    {
        var file = Path.Combine(run, "metrics.jsonl");
        if (!File.Exists(file)) return 0;
        long last = 0;
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(fs);
        while (reader.ReadLine() is { } line)
        {
            if (!line.Contains("\"phase\":\"scst\"")) continue;
            try { last = Math.Max(last, JsonDocument.Parse(line).RootElement.GetProperty("step").GetInt64()); }
            catch (JsonException) { } // a line being written
        }
        return last;
    }

    /// <summary>Nodes named in the learner's per-node rollout counts (phase rollout_nodes) so far.</summary>
    public static HashSet<string> RolloutNodes(string run)
    {
        var nodes = new HashSet<string>();
        var file = Path.Combine(run, "metrics.jsonl");
        if (!File.Exists(file)) return nodes;
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(fs);
        while (reader.ReadLine() is { } line)
        {
            if (!line.Contains("\"phase\":\"rollout_nodes\"")) continue;
            try
            {
                foreach (var p in JsonDocument.Parse(line).RootElement.EnumerateObject())
                    if (p.Name.StartsWith("akka.tcp://", StringComparison.Ordinal)) nodes.Add(p.Name);
            }
            catch (JsonException) { }
        }
        return nodes;
    }

    public static async Task WaitUntil(Func<bool> condition, TimeSpan timeout, string what, params HostProcess[] show)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout)
                throw new TimeoutException($"{what} did not happen within {timeout.TotalSeconds:F0}s.\n" +
                                           string.Join("\n---\n", show.Select(p => string.Join("\n", p.Lines.TakeLast(15)))));
            await Task.Delay(100);
        }
    }

    /// <summary>The plain trainer on <paramref name="config"/>: the reference the actor runs' weights are compared with.</summary>
    public static async Task PlainRun(string config, string runDir)
    {
        using var p = HostProcess.Start("plain", "train", "--config", config, "--run-dir", runDir);
        await p.ExpectExit(0, TimeSpan.FromSeconds(150), "finish the plain run");
    }

    public static JsonElement Summary(string run) => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(run, "summary.json"))).RootElement;
}
