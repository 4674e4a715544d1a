using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Scst.Training;
using Scst.Host.Configuration;
using Scst.Host.Reporting;
using Scst.Model.SafeTensors;

namespace Scst.Host.Commands;

/// <summary><c>eval --config FILE --checkpoint PATH --split test [--out FILE]</c>.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<FileInfo>("--checkpoint")
        {
            Description = "A checkpoint pointer (checkpoints/best.json) or a .safetensors file with its .sha256", Required = true,
        };
        var split = new Option<string>("--split") { Description = "train | val | test", DefaultValueFactory = _ => "test" };
        split.AcceptOnlyFromAmong("train", "val", "test");
        var output = new Option<FileInfo?>("--out") { Description = "Write metrics and captions as JSON here" };
        var cmd = new Command("eval", "Score a checkpoint on a split with BLEU-1..4, ROUGE-L and CIDEr-D") { checkpoint, split, output };
        cmd.SetAction(r =>
        {
            var configFile = r.GetValue(GlobalOptions.Config);
            if (configFile is null) { Console.Error.WriteLine("eval: --config FILE is required"); return 2; }
            using var loggers = HostLogging.Create();
            var log = loggers.CreateLogger("eval");
            var config = ConfigLoader.Load(configFile.FullName);
            var splitName = r.GetValue(split)!;
            var result = TrainingConsole.WithProgress("eval", log, p =>
                CheckpointEvaluation.Run(config, r.GetValue(checkpoint)!.FullName, splitName, log,
                    (done, total) => p(new TrainingProgress(splitName, done, total, new Dictionary<string, double>()))));
            TrainingConsole.PrintMetrics(r.GetValue(checkpoint)!.Name, new Dictionary<string, IReadOnlyDictionary<string, double>> { [splitName] = result.Metrics });
            if (r.GetValue(output) is { } outFile)
            {
                var json = new JsonObject
                {
                    ["checkpoint"] = r.GetValue(checkpoint)!.FullName,
                    ["split"] = splitName,
                    ["metrics"] = new JsonObject(result.Metrics.Select(kv => KeyValuePair.Create<string, JsonNode?>(kv.Key, kv.Value))),
                    ["captions"] = new JsonArray(result.Captions.Select(c => (JsonNode)new JsonObject { ["image_id"] = c.ImageId, ["caption"] = c.Caption }).ToArray()),
                };
                SafeTensorsFile.WriteAtomically(outFile.FullName, System.Text.Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
                log.LogInformation("Wrote {File}", outFile.FullName);
            }
            return 0;
        });
        return cmd;
    }
}
