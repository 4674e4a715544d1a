using Microsoft.Extensions.Logging.Abstractions;
using Scst.Training.Configuration;
using Scst.Training;
using Scst.Host.Configuration;
using Scst.Model.Data.Shapes;
using static TorchSharp.torch;

namespace Scst.Training.Tests;

/// <summary>A tiny shapes dataset (written once per test class) and tiny CE/SCST configs over it.</summary>
public sealed class TinyShapes : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("scst-tiny-").FullName;
    public string DataDir => Path.Combine(Root, "shapes");

    public TinyShapes()
    {
        ShapesDatasetWriter.Write(DataDir, new ShapesDatasetOptions(Seed: 7, Train: 48, Val: 12, Test: 12, ImageSize: 32));
    }

    public string RunDir(string name) => Path.Combine(Root, name);

    // The tiny architecture and dataset block shared by the CE and SCST configs (YAML, indented under model:).
    private string ModelAndData => $$"""
        architecture: {image_size: 32, patch_size: 16, vision_hidden: 32, vision_layers: 1, vision_heads: 2, vision_mlp: 64,
                       num_query_tokens: 4, qformer_hidden: 32, qformer_layers: 1, qformer_heads: 2, qformer_intermediate: 64,
                       d_model: 32, d_kv: 8, d_ff: 64, num_heads: 2, encoder_layers: 1, decoder_layers: 1 }
      datasets:
        shapes:
          build_info: {images: {{DataDir}}}
          vis_processor:
            train: {image_size: 32}
            eval: {image_size: 32}
      """;

    public ScstConfig Ce(int iters = 6, string extraRun = "") => ConfigLoader.Parse($$"""
        model:
          freeze_vit: false
          max_txt_len: 20
        {{ModelAndData}}
        run:
          lr_sched: linear_warmup_cosine_lr
          init_lr: 3e-3
          min_lr: 1e-4
          warmup_steps: 2
          max_iters: {{iters}}
          iters_per_inner_epoch: 3
          batch_size_train: 8
          batch_size_eval: 12
          max_grad_norm: 1.0
          max_len: 12
          num_beams: 1
          seed: 5
          eval_every: 3
          checkpoint_every: 2
          threads: 1
        {{extraRun}}
        """, "tiny_ce.yaml");

    /// <summary>A CE config with the tiny model and data and the given run section (YAML lines indented by two).</summary>
    public ScstConfig CeWithRun(string runLines) => ConfigLoader.Parse($$"""
        model:
          freeze_vit: false
          max_txt_len: 20
        {{ModelAndData}}
        run:
        {{runLines}}
        """, "tiny_ce_run.yaml");

    public ScstConfig Scst(string finetuned, int iters = 4, string sampling = "sample", string baseline = "leave_one_out") => ConfigLoader.Parse($$"""
        model:
          freeze_vit: false
          max_txt_len: 20
          load_finetuned: true
          finetuned: {{finetuned}}
        {{ModelAndData}}
        run:
          lr_sched: constant_lr
          init_lr: 1e-3
          max_iters: {{iters}}
          batch_size_train: 4
          batch_size_eval: 12
          max_len: 12
          seed: 9
          eval_every: 2
          checkpoint_every: 2
          threads: 1
        scst:
          sampling: {{sampling}}
          sample_n: 3
          beam_size: 3
          baseline: {{baseline}}
        """, "tiny_scst.yaml");

    public static CaptionTrainer Trainer(ScstConfig c, TrainerOptions o) => new(c, o, new NullSink(), NullLogger.Instance);

    /// <summary>Trains to the end and returns the final weights (CPU copies) and the summary.</summary>
    public static (Dictionary<string, Tensor> Weights, TrainSummary Summary) Train(ScstConfig c, TrainerOptions o)
    {
        using var t = Trainer(c, o);
        var s = t.Run();
        var w = t.Learner.Policy.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().cpu().clone());
        return (w, s);
    }

    public static double MaxAbsDiff(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        return a.Keys.Max(k => (a[k] - b[k]).abs().max().item<float>());
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }

    public sealed class NullSink : IMetricsSink
    {
        public List<(string Phase, long Step, IReadOnlyDictionary<string, double> Values)> Rows { get; } = [];
        public void Log(string phase, long step, IReadOnlyDictionary<string, double> values) => Rows.Add((phase, step, values));
        public void Dispose() { }
    }
}
