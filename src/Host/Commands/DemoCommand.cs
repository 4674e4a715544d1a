using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scst.Training.Configuration;
using Scst.Training;
using Scst.Host.Configuration;
using Scst.Model.SafeTensors;
using Spectre.Console;

namespace Scst.Host.Commands;

/// <summary>
/// <c>demo</c>: the built-in end-to-end run on a CPU. Generates the shapes dataset when absent, pre-trains a tiny BLIP2-T5
/// with cross-entropy until validation CIDEr-D stops improving, fine-tunes it with SCST from CE's best validation
/// checkpoint, and compares both on the test split.
/// </summary>
public static class DemoCommand
{
    public static readonly Option<int> Seed = new("--seed") { Description = "Training seed (model init, data order, sampling)", DefaultValueFactory = _ => 42 };
    public static readonly Option<DirectoryInfo?> DataDir = new("--data-dir") { Description = "Where the shapes dataset lives or is generated (default data/shapes)" };
    public static readonly Option<int?> CeIters = new("--ce-iters") { Description = "Override the CE run length (updates)" };
    public static readonly Option<int?> ScstIters = new("--scst-iters") { Description = "Override the SCST run length (updates)" };
    public static readonly Option<int?> Images = new("--train-images") { Description = "Generate a dataset of this many training images (a fresh --data-dir is needed)" };

    public static Command Create()
    {
        var cmd = new Command("demo", "Built-in demo: shapes data, CE pre-training, SCST fine-tuning, CE-vs-SCST table") { Seed, DataDir, CeIters, ScstIters, Images };
        GlobalOptions.AddMetrics(cmd);
        cmd.SetAction(r =>
        {
            var runDir = r.GetValue(GlobalOptions.RunDir)?.FullName ?? Path.GetFullPath(Path.Combine("runs", "demo"));
            var dataDir = r.GetValue(DataDir)?.FullName ?? Path.GetFullPath(Path.Combine("data", "shapes"));
            return Run(runDir, dataDir, r.GetValue(Seed), r.GetValue(CeIters), r.GetValue(ScstIters), r.GetValue(Images));
        });
        return cmd;
    }

    /// <summary>configs/ beside the working directory first, then beside the app (the build copies it there).</summary>
    public static string FindConfig(string name)
    {
        foreach (var dir in new[] { Path.Combine(Directory.GetCurrentDirectory(), "configs"), Path.Combine(AppContext.BaseDirectory, "configs") })
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        throw new ConfigException([new ConfigError(Path.Combine("configs", name), 0, 0, "", "built-in config not found in ./configs or beside the app")]);
    }

    public static int Run(string runDir, string dataDir, int seed, int? ceIters, int? scstIters, int? trainImages)
    {
        Directory.CreateDirectory(runDir);
        ScstConfig Prepare(string file, string outDir, string? finetuned, int? iters)
        {
            var c = ConfigLoader.Load(FindConfig(file));
            var datasets = c.Datasets.ToDictionary(kv => kv.Key, kv => kv.Value with
            {
                Images = dataDir,
                Shapes = trainImages is int n && kv.Value.Shapes is { } s ? s with { Train = n } : kv.Value.Shapes,
            });
            var model = finetuned is null ? c.Model : c.Model with { Finetuned = finetuned };
            return c with
            {
                Datasets = datasets,
                Model = model,
                Run = c.Run with { Seed = seed, OutputDir = outDir, MaxIters = iters ?? c.Run.MaxIters },
            };
        }

        var ceDir = Path.Combine(runDir, "ce");
        var scstDir = Path.Combine(runDir, "scst");
        var ceConfig = Prepare("demo_ce.yaml", ceDir, null, ceIters);
        AnsiConsole.MarkupLine($"[bold]Step 1/2[/]: cross-entropy pre-training → {Markup.Escape(ceDir)}");
        var ce = LoadOrTrain(ceConfig, ceDir, "ce");
        var best = Path.Combine(ceDir, "checkpoints", "best.json");
        AnsiConsole.MarkupLine($"[bold]Step 2/2[/]: SCST from CE's best validation checkpoint (update {ce["best_step"]}) → {Markup.Escape(scstDir)}");
        var scst = LoadOrTrain(Prepare("demo_scst.yaml", scstDir, best, scstIters), scstDir, "scst");

        var ceTest = ce["metrics"]!["test"]!.AsObject();
        var scstTest = scst["metrics"]!["test"]!.AsObject();
        var table = new Table().Title("Test split: CE vs SCST").AddColumn("metric").AddColumn(new TableColumn("CE").RightAligned())
            .AddColumn(new TableColumn("SCST").RightAligned()).AddColumn(new TableColumn("relative").RightAligned());
        foreach (var m in new[] { "CIDEr", "Bleu_4", "ROUGE_L", "Bleu_1" })
        {
            var a = ceTest[m]!.GetValue<double>();
            var b = scstTest[m]!.GetValue<double>();
            table.AddRow(m, a.ToString("F4"), b.ToString("F4"), $"{(b - a) / a:+0.0%;-0.0%}");
        }
        AnsiConsole.Write(table);

        var ceCider = ceTest["CIDEr"]!.GetValue<double>();
        var scstCider = scstTest["CIDEr"]!.GetValue<double>();
        var summary = new JsonObject
        {
            ["seed"] = seed,
            ["ce"] = ce["metrics"]!.DeepClone(),
            ["scst"] = scst["metrics"]!.DeepClone(),
            ["relative_cider_gain"] = (scstCider - ceCider) / ceCider,
            ["ce_updates"] = ce["updates"]!.DeepClone(),
            ["ce_best_step"] = ce["best_step"]!.DeepClone(),
            ["scst_updates"] = scst["updates"]!.DeepClone(),
            ["ce_val_curve"] = ValCurve(Path.Combine(ceDir, "metrics.jsonl")),
            ["scst_val_curve"] = ValCurve(Path.Combine(scstDir, "metrics.jsonl")),
            ["scst_settings"] = scst["settings"]!.DeepClone(),
            ["elapsed_s"] = ce["elapsed_s"]!.GetValue<double>() + scst["elapsed_s"]!.GetValue<double>(),
        };
        var path = Path.Combine(runDir, "demo_summary.json");
        SafeTensorsFile.WriteAtomically(path, System.Text.Encoding.UTF8.GetBytes(summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
        AnsiConsole.MarkupLine($"SCST changed test CIDEr-D by [bold]{(scstCider - ceCider) / ceCider:+0.0%;-0.0%}[/]; summary in {Markup.Escape(path)}");
        return 0;
    }

    // A finished stage is reused (the demo can be re-run to finish a stage that was interrupted; --resume semantics).
    private static JsonObject LoadOrTrain(ScstConfig config, string dir, string title)
    {
        var summaryPath = Path.Combine(dir, "summary.json");
        if (File.Exists(summaryPath) && JsonNode.Parse(File.ReadAllText(summaryPath)) is JsonObject done && done["completed"]?.GetValue<bool>() == true)
        {
            AnsiConsole.MarkupLine($"  already trained: reusing {Markup.Escape(summaryPath)}");
            return done;
        }
        var resume = File.Exists(Path.Combine(dir, "checkpoints", "latest.json"));
        TrainCommand.Run(config, new TrainerOptions(dir, resume), title);
        return JsonNode.Parse(File.ReadAllText(summaryPath)) as JsonObject ?? throw new InvalidDataException($"{summaryPath}: expected a JSON object");
    }

    private static JsonArray ValCurve(string metricsJsonl)
    {
        var curve = new JsonArray();
        foreach (var row in Reporting.PlotWriter.Read(metricsJsonl).Where(r => r.Phase == "val" && r.Values.ContainsKey("CIDEr")))
            curve.Add(new JsonObject { ["step"] = row.Step, ["CIDEr"] = row.Values["CIDEr"] });
        return curve;
    }
}
