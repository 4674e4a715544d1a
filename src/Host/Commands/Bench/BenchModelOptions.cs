using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Scst.Model;
using Scst.Model.T5;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Host.Commands.Bench;

/// <summary>Options shared by the model benchmarks: a random-init T5 of a given size on a device and dtype.</summary>
internal sealed class BenchModelOptions
{
    public Option<int> DModel { get; } = new("--d-model") { Description = "T5 d_model", DefaultValueFactory = _ => 256 };
    public Option<int> Layers { get; } = new("--layers") { Description = "encoder and decoder layers each", DefaultValueFactory = _ => 4 };
    public Option<int> Heads { get; } = new("--heads") { Description = "attention heads (d_kv = d_model / heads)", DefaultValueFactory = _ => 4 };
    public Option<int> DFf { get; } = new("--d-ff") { Description = "feed-forward width (gated-gelu)", DefaultValueFactory = _ => 1024 };
    public Option<int> Vocab { get; } = new("--vocab") { Description = "vocabulary size", DefaultValueFactory = _ => 32128 };
    public Option<int> Batch { get; } = new("--batch") { Description = "images per batch", DefaultValueFactory = _ => 8 };
    public Option<int> Beams { get; } = new("--beams") { Description = "beams (generate) / sequences per image (learner)", DefaultValueFactory = _ => 5 };
    public Option<int> InputLen { get; } = new("--input-len") { Description = "encoder input embeddings per image (queries + prompt)", DefaultValueFactory = _ => 40 };
    public Option<int> NewTokens { get; } = new("--new-tokens") { Description = "generated / target tokens", DefaultValueFactory = _ => 20 };
    public Option<string> Device { get; } = new("--device") { Description = "cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "cpu" };
    public Option<string> DType { get; } = new("--dtype") { Description = "fp32 or bf16", DefaultValueFactory = _ => "fp32" };
    public Option<int> Warmup { get; } = new("--warmup") { Description = "untimed warm-up iterations", DefaultValueFactory = _ => 1 };
    public Option<int> Iters { get; } = new("--iters") { Description = "timed iterations", DefaultValueFactory = _ => 3 };
    public Option<int> Threads { get; } = new("--threads") { Description = "torch CPU threads (0: libtorch's default)", DefaultValueFactory = _ => 0 };
    public Option<string?> Out { get; } = new("--out") { Description = "also write the figures as JSON to this file" };

    /// <summary>
    /// <c>bench NAME</c> on a random-init T5 built from these options: <paramref name="measure"/> runs, and the figures
    /// (the model and run described, <c>bench</c>: NAME, then what it measured) are printed and written to --out.
    /// </summary>
    public static Command CreateCommand(string name, string description, Action<ModelBench> measure)
    {
        var o = new BenchModelOptions();
        var cmd = new Command(name, description);
        o.AddTo(cmd);
        cmd.SetAction(p =>
        {
            var (model, device, dtype) = o.RandomModel(p);
            using var _ = model;
            var figures = o.Describe(p, model, device, dtype);
            figures["bench"] = name;
            measure(new ModelBench(o, p, model, device, dtype, figures));
            o.Report(p, figures);
            return 0;
        });
        return cmd;
    }

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { DModel, Layers, Heads, DFf, Vocab, Batch, Beams, InputLen, NewTokens, Device, DType, Warmup, Iters, Threads, Out })
            cmd.Options.Add(o);
    }

    /// <summary>A T5 of the requested size with HF-style random init (seed 0), on the requested device and dtype.</summary>
    public (T5ForConditionalGeneration Model, Device Device, ScalarType DType) RandomModel(ParseResult p)
    {
        var (device, dtype) = Placement(p);
        var model = new T5ForConditionalGeneration(Config(p));
        using (var gen = new Generator(0, CPU)) model.InitWeights(gen);
        model.to(device).to(dtype);
        return (model, device, dtype);
    }

    public T5Config Config(ParseResult p)
    {
        var d = p.GetValue(DModel); var h = p.GetValue(Heads);
        if (d % h != 0) throw new ArgumentException($"--d-model {d} is not divisible by --heads {h}");
        return new T5Config
        {
            VocabSize = p.GetValue(Vocab), DModel = d, DKv = d / h, DFf = p.GetValue(DFf), NumLayers = p.GetValue(Layers),
            NumDecoderLayers = p.GetValue(Layers), NumHeads = h, FeedForwardProj = "gated-gelu", DenseActFn = "gelu_new",
            IsGatedAct = true, TieWordEmbeddings = false, ScaleDecoderOutputs = false, DropoutRate = 0.0,
        };
    }

    public (Device device, ScalarType dtype) Placement(ParseResult p)
    {
        TorchRuntime.Initialize();
        var threads = p.GetValue(Threads);
        if (threads > 0) torch.set_num_threads(threads);
        var device = TorchRuntime.ResolveDevice(p.GetValue(Device)!);
        var dtype = p.GetValue(DType) switch
        {
            "fp32" => ScalarType.Float32,
            "bf16" => ScalarType.BFloat16,
            var s => throw new ArgumentException($"--dtype '{s}' is not supported (fp32, bf16 are)"),
        };
        return (device, dtype);
    }

    /// <summary>Prints the figures and writes them as JSON when --out is given.</summary>
    public void Report(ParseResult p, JsonObject figures)
    {
        Console.WriteLine(figures.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        var path = p.GetValue(Out);
        if (!string.IsNullOrWhiteSpace(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            File.WriteAllText(path, figures.ToJsonString());
        }
    }

    public JsonObject Describe(ParseResult p, T5ForConditionalGeneration model, Device device, ScalarType dtype) => new()
    {
        ["device"] = device.ToString(), ["dtype"] = dtype.ToString(), ["threads"] = torch.get_num_threads(),
        ["d_model"] = model.Config.DModel, ["layers"] = model.Config.NumLayers, ["heads"] = model.Config.NumHeads,
        ["d_ff"] = model.Config.DFf, ["vocab"] = model.Config.VocabSize,
        ["parameters"] = model.parameters().Sum(x => x.numel()),
        ["batch"] = p.GetValue(Batch), ["beams"] = p.GetValue(Beams), ["input_len"] = p.GetValue(InputLen),
        ["new_tokens"] = p.GetValue(NewTokens), ["iters"] = p.GetValue(Iters),
    };
}

/// <summary>One run of a model benchmark: the random model on its device, the sizes asked for, and the figures to add to.</summary>
internal sealed class ModelBench(BenchModelOptions o, ParseResult p, T5ForConditionalGeneration model, Device device, ScalarType dtype, JsonObject figures)
{
    public T5ForConditionalGeneration Model => model;
    public Device Device => device;
    public JsonObject Figures => figures;
    public int Batch => p.GetValue(o.Batch);
    public int Beams => p.GetValue(o.Beams);
    public int NewTokens => p.GetValue(o.NewTokens);

    /// <summary>Random encoder inputs, --batch × --input-len embeddings (BLIP-2's projected queries and prompt), and their all-ones mask.</summary>
    public (Tensor Embeds, Tensor Mask) EncoderInputs()
    {
        int b = Batch, s = p.GetValue(o.InputLen);
        return (randn(b, s, model.Config.DModel, dtype: dtype, device: device), ones(b, s, dtype: ScalarType.Int64, device: device));
    }

    /// <summary>
    /// --warmup untimed, then --iters timed iterations, each in its own dispose scope: <paramref name="prepare"/> builds the
    /// iteration's inputs off the clock and returns the step to time; what the step returns is disposed after the clock stops.
    /// Returns the timed iterations' milliseconds.
    /// </summary>
    public List<double> TimeSteps(Func<Func<IDisposable?>> prepare)
    {
        var times = new List<double>();
        for (var i = 0; i < p.GetValue(o.Warmup) + p.GetValue(o.Iters); i++)
        {
            using var scope = NewDisposeScope();
            var step = prepare();
            Synchronize();
            var sw = Stopwatch.StartNew();
            using var result = step();
            Synchronize();
            sw.Stop();
            if (i >= p.GetValue(o.Warmup)) times.Add(sw.Elapsed.TotalMilliseconds);
        }
        return times;
    }

    private void Synchronize()
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
    }
}
