using Scst.Host.Tests.Cluster;

namespace Scst.Host.Tests;

/// <summary>The command line as users type it, run as a real process.</summary>
public class CliTests
{
    [Fact]
    public async Task RoleAndConfigWithoutACommandTrainsAndValidatesTheConfigFirst()
    {
        var bad = Path.Combine(Directory.CreateTempSubdirectory("scst-cli-").FullName, "bad.yaml");
        File.WriteAllText(bad, "run:\n  max_iters: 1\n  init_lr: 0\ndatasets:\n  shapes:\n    build_info: {images: x}\n");
        using var p = HostProcess.Start("cli", "--role", "learner", "--config", bad);
        await p.ExpectExit(2, TimeSpan.FromSeconds(60), "config error exit");
        Assert.Contains(p.Lines, l => l.Contains("bad.yaml:3:12") && l.Contains("run.init_lr"));
    }

    [Fact]
    public async Task NoCommandAndNoConfigPointsToHelp()
    {
        using var p = HostProcess.Start("cli");
        await p.ExpectExit(2, TimeSpan.FromSeconds(60), "usage exit");
        Assert.Contains(p.Lines, l => l.Contains("--help"));
    }

    [Theory]
    [InlineData("--rollout-processes", "0", "bench actors: --rollout-processes must be at least 1")]
    [InlineData("--updates", "2", "bench actors: --updates must be at least 3")]
    public async Task BenchActorsRefusesBadCountsInOneLine(string option, string value, string message)
    {
        var config = Path.Combine(AppContext.BaseDirectory, "configs", "demo_scst.yaml");
        using var p = HostProcess.Start("bench-actors", "bench", "actors", "--config", config, option, value);
        await p.ExpectExit(2, TimeSpan.FromSeconds(60), "bad count exit");
        Assert.Contains(message, p.Lines);
        Assert.DoesNotContain(p.Lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("--mb", "0", "bench weights: --mb must be at least 1")]
    [InlineData("--repeat", "0", "bench weights: --repeat must be at least 1")]
    public async Task BenchWeightsRefusesBadCountsInOneLine(string option, string value, string message)
    {
        using var p = HostProcess.Start("bench-weights", "bench", "weights", option, value);
        await p.ExpectExit(2, TimeSpan.FromSeconds(60), "bad count exit");
        Assert.Contains(message, p.Lines);
        Assert.DoesNotContain(p.Lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    [Fact]
    [Trait("Category", "Chaos")]
    public async Task BenchWeightsMeasuresThePlaneAndARawSocketBetweenTwoProcesses()
    {
        var json = Path.Combine(Directory.CreateTempSubdirectory("scst-bench-weights-").FullName, "w.json");
        using var p = HostProcess.Start("bench-weights", "bench", "weights", "--mb", "9", "--repeat", "1", "--json", json);
        await p.ExpectExit(0, TimeSpan.FromSeconds(120), "bench exit");
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        var r = doc.RootElement;
        Assert.True(r.GetProperty("mb_per_s").GetDouble() > 0);
        Assert.True(r.GetProperty("raw_mb_per_s").GetDouble() > 0);
        Assert.InRange(r.GetProperty("bytes").GetInt64(), 9_000_000, 9_000_200); // the payload plus its safetensors header
        Assert.True(r.GetProperty("server_peak_rss_bytes").GetInt64() > 0);
        Assert.Contains(p.Lines, l => l.Contains("weight plane:") && l.Contains("MB/s"));
    }

    [Fact]
    public async Task HelpListsTheCommands()
    {
        using var p = HostProcess.Start("cli", "--help");
        await p.ExpectExit(0, TimeSpan.FromSeconds(60), "help exit");
        var text = string.Join("\n", p.Lines);
        foreach (var c in new[] { "demo", "train", "eval", "score", "data", "model", "bench", "node", "config", "--role", "--seed-nodes" })
            Assert.Contains(c, text);
    }

    [Fact]
    public async Task EvalNamesAMissingCheckpoint()
    {
        var dir = Directory.CreateTempSubdirectory("scst-cli-").FullName;
        var config = Path.Combine(dir, "c.yaml");
        var data = Path.Combine(dir, "shapes");
        Scst.Model.Data.Shapes.ShapesDatasetWriter.Write(data, new Scst.Model.Data.Shapes.ShapesDatasetOptions(Train: 4, Val: 2, Test: 2, ImageSize: 32));
        File.WriteAllText(config, $"run:\n  max_iters: 1\ndatasets:\n  shapes:\n    build_info: {{images: {data}}}\n    vis_processor: {{eval: {{image_size: 32}}}}\nmodel:\n  architecture: {{image_size: 32}}\n");
        var missing = Path.Combine(dir, "nowhere", "best.json");
        using var p = HostProcess.Start("cli", "eval", "--config", config, "--checkpoint", missing);
        await p.ExpectExit(2, TimeSpan.FromSeconds(120), "eval error exit");
        Assert.Contains(p.Lines, l => l.Contains(missing) || l.Contains(Path.Combine(dir, "nowhere")));
        Assert.DoesNotContain(p.Lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    static readonly string[] ClusterOptions = ["--seed-nodes", "--port", "--hocon", "--tls-cert", "--tls-ca", "--tls-password-env", "--metrics-port", "--metrics-host", "--role"];

    static async Task<string[]> HelpOptions(params string[] command)
    {
        using var p = HostProcess.Start("help", [.. command, "--help"]);
        await p.ExpectExit(0, TimeSpan.FromSeconds(60), "help exit");
        // Option names start the lines of the Options section (after two spaces).
        return p.Lines.Select(l => l.TrimStart()).Where(l => l.StartsWith("--", StringComparison.Ordinal))
            .Select(l => l.Split([' ', ','], 2)[0]).ToArray();
    }

    [Theory]
    [InlineData("score")]
    [InlineData("model", "info")]
    [InlineData("model", "tokenize")]
    [InlineData("data", "synth")]
    [InlineData("config", "validate")]
    [InlineData("eval")]
    public async Task CommandsWithoutAClusterDoNotListClusterOptions(params string[] command)
    {
        var options = await HelpOptions(command);
        Assert.Contains("--verbose", options);
        Assert.Empty(options.Intersect(ClusterOptions));
    }

    [Theory]
    [InlineData("train", true)]
    [InlineData("node", true)]
    [InlineData("status", false)]
    public async Task ClusterCommandsListClusterOptions(string command, bool metricsAndRole)
    {
        var options = await HelpOptions(command);
        foreach (var o in new[] { "--seed-nodes", "--port", "--hocon", "--tls-cert", "--tls-ca", "--tls-password-env" }) Assert.Contains(o, options);
        foreach (var o in new[] { "--metrics-port", "--metrics-host", "--role" })
            Assert.Equal(metricsAndRole, options.Contains(o));
    }

    [Fact]
    public async Task ConfigShowPrintsEachValueWithItsSourceAndValidateNamesTheRefusedKey()
    {
        var lavis = Path.Combine(AppContext.BaseDirectory, "data", "lavis");
        using (var show = HostProcess.Start("cli", "config", "show", Path.Combine(lavis, "caption_coco_ft.yaml")))
        {
            await show.ExpectExit(0, TimeSpan.FromSeconds(60), "config show exit");
            Assert.Contains(show.Lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^model\.image_size: 364 +# preset caption_coco_flant5xl$"));
            Assert.Contains(show.Lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^run\.init_lr: 1E-05 +# .*caption_coco_ft\.yaml:36:12$"));
            Assert.Contains(show.Lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^run\.eval_every: 500 +# default$"));
        }
        using (var model = HostProcess.Start("cli", "config", "validate", Path.Combine(lavis, "blip2_pretrain_flant5xl.yaml")))
        {
            await model.ExpectExit(0, TimeSpan.FromSeconds(60), "model file validate exit");
            Assert.Contains(model.Lines, l => l.Contains("valid (LAVIS model-type file"));
        }
        using var vitL = HostProcess.Start("cli", "config", "validate", Path.Combine(lavis, "blip2_pretrain_flant5xl_vitL.yaml"));
        await vitL.ExpectExit(2, TimeSpan.FromSeconds(60), "vitL validate exit");
        Assert.Contains(vitL.Lines, l => l.Contains("blip2_pretrain_flant5xl_vitL.yaml:12:14: 'model.vit_model'"));
    }
}
