using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Scst.Actors.Pipeline;
using Scst.Training;
using Scst.Training.Configuration;
using Scst.Host.Configuration;
using Scst.Host.Reporting;
using Scst.Model;
using Scst.Model.Checkpoints;
using Scst.Model.Precision;
using static TorchSharp.torch;

namespace Scst.Host.Commands.Bench;

/// <summary>
/// <c>bench seed-scale</c>: the seed's model at its real shape. Writes once (cached) a random-valued folder with exactly
/// the hub layout of <c>Salesforce/blip2-flan-t5-xl</c>, loads it the LAVIS way through the trainer every run uses, and
/// times N CE and N SCST updates phase by phase at the seed's 364 px, with load time, peak RSS, parameter counts,
/// checkpoint size and the bytes a weight update publishes.
/// </summary>
public static class BenchSeedScaleCommand
{
    public static Command Create()
    {
        var dir = new Option<string>("--dir") { Description = "the pretrained folder; written with random values in the hub layout when absent (~15.8 GB)", DefaultValueFactory = _ => "runs/seed-scale/blip2-flan-t5-xl" };
        var work = new Option<string>("--work-dir") { Description = "where the bench's data, checkpoint and weight file go", DefaultValueFactory = _ => "runs/seed-scale/bench" };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "cpu" };
        var updates = new Option<int>("--updates") { Description = "CE updates, then SCST updates, each timed", DefaultValueFactory = _ => 1 };
        var imageSize = new Option<int>("--image-size") { Description = "image size (the checkpoint is 224 px; position embeddings are interpolated)", DefaultValueFactory = _ => 364 };
        var batch = new Option<int>("--batch") { Description = "images per update", DefaultValueFactory = _ => 1 };
        var beams = new Option<int>("--beams") { Description = "beams = captions per image (K) in SCST", DefaultValueFactory = _ => 2 };
        var maxLen = new Option<int>("--max-len") { Description = "generated tokens", DefaultValueFactory = _ => 10 };
        var noAmp = new Option<bool>("--no-amp") { Description = "run every module in its stored dtype instead of autocast" };
        var threads = new Option<int>("--threads") { Description = "torch CPU threads (0: libtorch's default)", DefaultValueFactory = _ => 0 };
        var outFile = new Option<string?>("--out") { Description = "also write the figures as JSON to this file" };
        var cmd = new Command("seed-scale", "BLIP-2 FlanT5-XL at its real shape (random weights, hub layout): load, memory, CE and SCST update phases")
        {
            dir, work, device, updates, imageSize, batch, beams, maxLen, noAmp, threads, outFile,
        };
        cmd.SetAction(p =>
        {
            using var loggers = HostLogging.Create();
            var log = loggers.CreateLogger("bench");
            var folder = p.GetValue(dir)!;
            var workDir = Path.GetFullPath(p.GetValue(work)!);
            var n = p.GetValue(updates);
            var figures = new JsonObject { ["bench"] = "seed-scale", ["folder"] = Path.GetFullPath(folder) };

            var clock = Stopwatch.StartNew();
            HubLayoutFolder.EnsureBlip2FlanT5Xl(folder, progress: m => log.LogInformation("{Message}", m));
            figures["folder_ready_s"] = Round(clock.Elapsed.TotalSeconds);

            var yaml = Config(Path.GetFullPath(folder), workDir, p.GetValue(device)!, p.GetValue(imageSize), p.GetValue(batch),
                p.GetValue(beams), p.GetValue(maxLen), !p.GetValue(noAmp), p.GetValue(threads));
            var config = ConfigLoader.Parse(yaml, "bench seed-scale");
            var runDir = Path.Combine(workDir, "run");
            if (Directory.Exists(runDir)) Directory.Delete(runDir, recursive: true);

            clock.Restart();
            using var core = Learner.Create(config, runDir, NullMetricsSink.Instance, log);
            // The CE phases on the same model: one caption per image, so a batch is the same images as the SCST phases.
            var ce = new CeUpdate(config with { Run = config.Run with { CeSampleUnit = CeSampleUnit.Image } }, core.Policy, core.Corpus.Train);
            figures["load_s"] = Round(clock.Elapsed.TotalSeconds);
            figures["rss_after_load_gb"] = Round(ProcessMemory.RssBytes() / 1e9);
            figures["parameters"] = core.Setup.Parameters.ToJson();
            figures["bytes_by_dtype"] = new JsonObject(core.Setup.Parameters.BytesByDType.Select(kv => KeyValuePair.Create<string, JsonNode?>(kv.Key, kv.Value)));
            figures["settings"] = new JsonObject
            {
                ["device"] = core.Policy.Device.ToString(), ["image_size"] = p.GetValue(imageSize), ["batch"] = p.GetValue(batch),
                ["beams"] = p.GetValue(beams), ["max_len"] = p.GetValue(maxLen), ["amp"] = !p.GetValue(noAmp), ["threads"] = get_num_threads(),
            };

            var phases = new Dictionary<string, List<double>>();
            double Time(string phase, Action body)
            {
                Synchronize(core.Policy.Device);
                var sw = Stopwatch.StartNew();
                body();
                Synchronize(core.Policy.Device);
                var ms = sw.Elapsed.TotalMilliseconds;
                (phases.TryGetValue(phase, out var l) ? l : phases[phase] = []).Add(ms);
                log.LogInformation("{Phase}: {Ms:F0} ms", phase, ms);
                return ms;
            }

            var images = Enumerable.Range(0, p.GetValue(batch)).Select(i => i % core.Corpus.Train.Count).ToArray();
            var model = core.Policy.Model;
            for (var u = 0; u < n; u++)
            {
                // The forward pieces alone, without gradients, as generation runs them: ViT, then + Q-Former, then + T5 encoder.
                using (no_grad())
                using (Autocast.Enter(core.Policy.AmpDType))
                using (NewDisposeScope())
                {
                    model.eval();
                    var pixels = core.Corpus.Train.Pixels(images, core.Policy.Device);
                    // One untimed pass first: the first call of each piece pays allocation and kernel set-up, which
                    // would make the derived Q-Former and T5-encoder times (differences of the timed calls) meaningless.
                    if (u == 0) model.Encode(pixels, null, null);
                    var vit = Time("vit_forward", () => model.VisionModel.forward(pixels));
                    var img = Time("vit_qformer_projection_forward", () => model.EncodeImage(pixels));
                    var enc = Time("vit_qformer_t5_encoder_forward", () => model.Encode(pixels, null, null));
                    (phases.TryGetValue("qformer_forward", out var q) ? q : phases["qformer_forward"] = []).Add(img - vit);
                    (phases.TryGetValue("t5_encoder_forward", out var t) ? t : phases["t5_encoder_forward"] = []).Add(enc - img);
                }
                Time("ce_forward_backward", () => ce.Step(images, 0));
                Time("ce_optimizer", () => core.Optimization.Step(u, 0));
            }
            for (var u = 0; u < n; u++)
            {
                RolloutBatch rollout = null!;
                ScoredRollout scored = null!;
                Time("scst_generate", () => rollout = core.Rollouts!.Generate(images, u, RolloutGenerator.SamplingSeed(config.Run.Seed, u, 0)));
                Time("scst_reward", () => scored = core.Scst!.Score(core.Reward!, rollout, core.Rollouts!.GreedyCaptions(images)));
                Time("scst_learner_forward_backward", () => core.Scst!.Backward(scored, offPolicy: false));
                Time("scst_optimizer", () => core.Optimization.Step(n + u, 0));
                var weights = Path.Combine(workDir, "policy.safetensors");
                Time("weight_publish", () => PolicyWeights.Export(core.Policy.Model, core.Setup.Base, weights));
                figures["published_bytes_per_update"] = new FileInfo(weights).Length;
                File.Delete(weights);
            }
            CheckpointStore.Entry entry = null!;
            Time("checkpoint_write", () => entry = core.Save(core.Start() with { Update = 2 * n, Samples = 2L * n * images.Length }, null, "latest"));
            figures["checkpoint_bytes"] = new FileInfo(Path.Combine(runDir, "checkpoints", entry.File)).Length;
            figures["phases_ms"] = new JsonObject(phases.Select(kv => KeyValuePair.Create<string, JsonNode?>(kv.Key, Round(kv.Value.Average()))));
            figures["peak_rss_gb"] = Round(ProcessMemory.PeakRssBytes() / 1e9);
            figures["gpu_memory"] = core.Policy.Device.type == TorchSharp.DeviceType.CUDA
                ? "not exposed by TorchSharp 0.107; read nvidia-smi while it runs" : null;
            Console.WriteLine(figures.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            if (p.GetValue(outFile) is { } o) File.WriteAllText(o, figures.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            return 0;
        });
        return cmd;
    }

    private static double Round(double v) => Math.Round(v, 3);

    private static void Synchronize(Device device)
    {
        if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize(device);
    }

    /// <summary>configs/seed_scale/xl_scst.yaml's recipe (LAVIS's blip2_t5 on a pretrained folder), with the bench's sizes.</summary>
    private static string Config(string folder, string workDir, string device, int imageSize, int batch, int beams, int maxLen, bool amp, int threads) =>
        string.Format(CultureInfo.InvariantCulture, """
        model:
          arch: blip2_t5
          model_type: caption_coco_flant5xl
          load_pretrained: true
          load_finetuned: false
          image_size: {2}
          pretrained: "{0}"
          freeze_vit: true
          vit_precision: bf16
          prompt: "a photo of "
          max_txt_len: 32
        datasets:
          shapes:
            build_info:
              images: "{1}/shapes"
            vis_processor:
              train: {{name: blip_image_eval, image_size: {2}}}
              eval: {{name: blip_image_eval, image_size: {2}}}
            shapes: {{seed: 1234, train: 4, val: 2, test: 2}}
        run:
          task: captioning
          lr_sched: constant_lr
          init_lr: 1e-5
          min_lr: 1e-5
          warmup_lr: 1e-5
          warmup_steps: 0
          weight_decay: 0.05
          max_iters: 1000
          batch_size_train: {3}
          batch_size_eval: {3}
          max_len: {5}
          min_len: 2
          num_beams: 1
          seed: 42
          amp: {6}
          threads: {7}
          output_dir: "{1}/run"
          device: {8}
        scst:
          sampling: beam
          beam_size: {4}
          baseline: mean
        """, folder, workDir, imageSize, batch, beams, maxLen, amp ? "true" : "false", threads, device);
}
