using System.CommandLine;
using Scst.Model;
using Scst.Model.Blip2;
using Scst.Model.Checkpoints;
using Scst.Model.T5;
using TorchSharp;

namespace Scst.Host.Commands;

/// <summary><c>model check</c>, <c>model info</c> and <c>model tokenize</c>: inspect and verify Hugging Face checkpoint folders and their tokenizer.</summary>
public static class ModelCommand
{
    public static Command Create()
    {
        var cmd = new Command("model", "Inspect and check Hugging Face checkpoint folders (config.json + safetensors) and their spiece.model");
        cmd.Subcommands.Add(CreateCheck());
        cmd.Subcommands.Add(CreateInfo());
        cmd.Subcommands.Add(ModelTokenizeCommand.Create());
        return cmd;
    }

    private static Option<string> CheckpointOption() => new("--checkpoint") { Description = "HF checkpoint folder (config.json + model.safetensors or a sharded index)", Required = true };

    private static Command CreateCheck()
    {
        var ckpt = CheckpointOption();
        var reference = new Option<string?>("--reference") { Description = "reference.json in the fixture format (default: the folder's own reference.json)" };
        var tol = new Option<double>("--tolerance") { Description = "largest allowed max |diff|", DefaultValueFactory = _ => ReferenceCheck.DefaultTolerance };
        var maxNew = new Option<int?>("--max-new-tokens") { Description = "generation length of the reference (default 8 for T5, 6 for BLIP-2, as the fixtures)" };
        var cmd = new Command("check", "Run a reference.json's inputs through the checkpoint and compare every output; non-zero exit on any mismatch");
        cmd.Options.Add(ckpt); cmd.Options.Add(reference); cmd.Options.Add(tol); cmd.Options.Add(maxNew);
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(ckpt)!;
            var refPath = parse.GetValue(reference) ?? Path.Combine(dir, "reference.json");
            var tolerance = parse.GetValue(tol);
            TorchRuntime.Initialize();
            using var model = HfCheckpoint.Load(dir);
            var items = ReferenceCheck.Run(model, refPath, tolerance, parse.GetValue(maxNew));
            Console.WriteLine($"{model.GetType().Name} from {dir} vs {refPath} (tolerance {tolerance:G})");
            foreach (var i in items)
            {
                var what = i.IsSequence ? (i.Ok ? "identical" : "DIFFER") : $"max|diff| {i.MaxAbsDiff:E2}";
                Console.WriteLine($"  {(i.Ok ? "ok  " : "FAIL")} {i.Name,-40} {what}{(i.Detail is null ? "" : "  " + i.Detail)}");
            }
            var failed = items.Count(i => !i.Ok);
            Console.WriteLine(failed == 0 ? $"all {items.Count} outputs match" : $"{failed} of {items.Count} outputs do not match");
            return failed == 0 ? 0 : 1;
        });
        return cmd;
    }

    private static Command CreateInfo()
    {
        var ckpt = CheckpointOption();
        var fp32 = new Option<bool>("--fp32") { Description = "hold every BLIP-2 part in fp32 (default: as LAVIS trains it, frozen ViT and T5 in bf16, the rest fp32)" };
        var cmd = new Command("info", "Print a checkpoint's architecture, parameter counts, load time and peak memory");
        cmd.Options.Add(ckpt); cmd.Options.Add(fp32);
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(ckpt)!;
            TorchRuntime.Initialize();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var lavis = !parse.GetValue(fp32) && HfCheckpoint.ModelType(HfCheckpoint.ReadConfig(dir), dir) == "blip-2";
            using var model = lavis
                ? HfCheckpoint.LoadBlip2T5(dir, Blip2LoadOptions.Lavis(freezeVit: true, TorchSharp.torch.ScalarType.BFloat16, imageSize: null, shareKey: null))
                : HfCheckpoint.Load(dir);
            var loadS = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"{dir}: {model.GetType().Name}{(lavis ? " held as LAVIS trains it (frozen ViT and T5 in bf16, Q-Former, queries, projection, ln_vision in fp32; --fp32 for all fp32)" : "")}");
            var t5 = model switch { T5ForConditionalGeneration t => t.Config, Blip2T5 b => b.Config.Text, _ => null };
            if (model is Blip2T5 blip)
            {
                var v = blip.Config.Vision; var q = blip.Config.QFormer;
                Console.WriteLine($"  vision: {v.NumHiddenLayers} layers, hidden {v.HiddenSize}, {v.NumAttentionHeads} heads, mlp {v.IntermediateSize}, image {v.ImageSize}px / patch {v.PatchSize} ({v.NumPositions} tokens)");
                Console.WriteLine($"  qformer: {q.NumHiddenLayers} layers, hidden {q.HiddenSize}, {q.NumAttentionHeads} heads, cross-attention every {q.CrossAttentionFrequency}, {blip.Config.NumQueryTokens} query tokens");
                Console.WriteLine($"  image tokens: {(blip.Config.ImageTokenIndex is int id ? $"placeholder id {id} replaced by the queries" : "queries prepended to the prompt")}");
            }
            if (t5 is not null)
                Console.WriteLine($"  t5: {t5.NumLayers}+{t5.NumDecoderLayers} layers, d_model {t5.DModel}, {t5.NumHeads} heads × d_kv {t5.DKv}, d_ff {t5.DFf} ({(t5.IsGatedAct ? "gated-" : "")}{t5.DenseActFn}), vocab {t5.VocabSize}, " +
                                  $"head {(t5.TieWordEmbeddings ? "tied to shared" : "separate lm_head")}{(t5.ScaleDecoderOutputs ? " with d_model^-0.5 rescale" : "")}, buckets {t5.RelativeAttentionNumBuckets}/{t5.RelativeAttentionMaxDistance}");
            long total = 0;
            foreach (var group in model.named_parameters().GroupBy(p => p.name.Split('.')[0] == "language_model" ? string.Join('.', p.name.Split('.').Take(2)) : p.name.Split('.')[0]))
            {
                var n = group.Sum(p => p.parameter.numel());
                total += n;
                Console.WriteLine($"  {group.Key,-28} {n,14:N0} params  ({group.First().parameter.dtype})");
            }
            Console.WriteLine($"  {"total",-28} {total,14:N0} params");
            Console.WriteLine($"  loaded in {loadS:F1} s; peak RSS {ProcessMemory.PeakRssBytes() / 1e9:F2} GB");
            return 0;
        });
        return cmd;
    }
}
