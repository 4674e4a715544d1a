using Scst.Model;
using Scst.Model.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

public class OptimTests
{
    public OptimTests() => TorchRuntime.Initialize();

    // Initialised from its own generator: tests in parallel classes draw from the global RNG while models are built.
    private static Sequential TinyModel(long seed)
    {
        var model = nn.Sequential(("fc1", nn.Linear(4, 8)), ("layer_norm", nn.LayerNorm(8)), ("act", nn.Tanh()), ("fc2", nn.Linear(8, 2)));
        using var g = new Generator((ulong)seed);
        using (torch.no_grad())
            foreach (var p in model.parameters()) p.uniform_(-0.5, 0.5, generator: g);
        return model;
    }

    private static (Tensor X, Tensor Y) Batch(int n = 16)
    {
        var g = new Generator(123);
        return (torch.randn([n, 4], generator: g), torch.randn([n, 2], generator: g));
    }

    private static void TrainSteps(Sequential model, Scst.Model.Optim.AdamW opt, ILrScheduler sched, int from, int to, Tensor x, Tensor y)
    {
        for (var i = from; i < to; i++)
        {
            using var scope = torch.NewDisposeScope();
            sched.Step(curEpoch: i / 5, curStep: i % 5);
            opt.ZeroGrad();
            var loss = nn.functional.mse_loss(model.call(x), y);
            loss.backward();
            Gradients.ClipGlobalNorm(opt.Parameters, 1.0);
            opt.Step();
        }
    }

    [Fact]
    public void Lavis_groups_follow_ndim_and_substring_rule()
    {
        Assert.True(ParameterGroups.IsNoDecay("encoder.block.0.layer.0.layer_norm.weight", torch.ones(8)));
        Assert.True(ParameterGroups.IsNoDecay("q.bias", torch.ones(2, 2)));
        Assert.True(ParameterGroups.IsNoDecay("visual_encoder.ln_vision.weight", torch.ones(2, 2)));
        Assert.True(ParameterGroups.IsNoDecay("backbone.bn1.weight", torch.ones(2, 2)));
        Assert.True(ParameterGroups.IsNoDecay("query_tokens", torch.ones(1, 32, 8)) is false);
        Assert.False(ParameterGroups.IsNoDecay("encoder.block.0.layer.0.SelfAttention.q.weight", torch.ones(2, 2)));

        using var model = TinyModel(1);
        model.get_parameter("fc2.weight")!.requires_grad = false; // frozen parameters are left out
        var groups = ParameterGroups.Lavis(model.named_parameters(), weightDecay: 0.05);
        Assert.Equal(["fc1.weight"], groups[0].Parameters.Select(p => p.Name));
        Assert.Equal(0.05, groups[0].WeightDecay);
        Assert.Equal(["fc1.bias", "layer_norm.weight", "layer_norm.bias", "fc2.bias"], groups[1].Parameters.Select(p => p.Name));
        Assert.Equal(0.0, groups[1].WeightDecay);
    }

    [Fact]
    public void AdamW_matches_torch_AdamW()
    {
        using var a = TinyModel(2);
        using var b = TinyModel(2);
        var (x, y) = Batch();
        var mine = new Scst.Model.Optim.AdamW([new ParameterGroup("all", a.named_parameters().ToList(), 0.05)], lr: 1e-2, beta2: 0.98);
        var reference = torch.optim.AdamW(b.parameters(), lr: 1e-2, beta1: 0.9, beta2: 0.98, eps: 1e-8, weight_decay: 0.05);
        for (var i = 0; i < 20; i++)
        {
            mine.ZeroGrad();
            nn.functional.mse_loss(a.call(x), y).backward();
            mine.Step();
            reference.zero_grad();
            nn.functional.mse_loss(b.call(x), y).backward();
            reference.step();
        }
        foreach (var ((name, pa), (_, pb)) in a.named_parameters().Zip(b.named_parameters()))
            Assert.True((pa - pb).abs().max().item<float>() <= 1e-6f, $"{name} differs from torch's AdamW");
    }

    [Fact]
    public void Resume_from_state_dict_continues_identically()
    {
        const int n = 12, k = 5;
        var (x, y) = Batch();
        Scst.Model.Optim.AdamW MakeOpt(Sequential m) => ParameterGroups.LavisAdamW(m, initLr: 1e-2, weightDecay: 0.05);
        ILrScheduler MakeSched(Scst.Model.Optim.AdamW o) => new LinearWarmupCosineLRScheduler(o, maxEpoch: 3, minLr: 1e-4, initLr: 1e-2, warmupSteps: 3, warmupStartLr: 1e-3);

        using var straight = TinyModel(3);
        var o1 = MakeOpt(straight);
        TrainSteps(straight, o1, MakeSched(o1), 0, n, x, y);

        using var first = TinyModel(3);
        var o2 = MakeOpt(first);
        TrainSteps(first, o2, MakeSched(o2), 0, k, x, y);
        // Round-trip the state the way a checkpoint does: tensors as raw floats, scalars as JSON text.
        var state = o2.StateDict();
        var savedTensors = state.Tensors.ToDictionary(kv => kv.Key, kv => (kv.Value.data<float>().ToArray(), kv.Value.shape));
        var savedJson = state.Scalars.ToJson();
        var savedWeights = first.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        using var resumed = TinyModel(99); // different init, overwritten below
        resumed.load_state_dict(savedWeights);
        var o3 = MakeOpt(resumed);
        o3.LoadStateDict(new OptimizerCheckpoint(
            savedTensors.ToDictionary(kv => kv.Key, kv => torch.tensor(kv.Value.Item1, kv.Value.shape)),
            OptimizerScalars.FromJson(savedJson)));
        TrainSteps(resumed, o3, MakeSched(o3), k, n, x, y);

        foreach (var ((name, pa), (_, pb)) in straight.named_parameters().Zip(resumed.named_parameters()))
            Assert.True((pa - pb).abs().max().item<float>() <= 1e-6f, $"{name} differs after resume");
        // And the check can fail: without the optimizer state the run diverges.
        using var naive = TinyModel(99);
        naive.load_state_dict(savedWeights);
        var o4 = MakeOpt(naive);
        TrainSteps(naive, o4, MakeSched(o4), k, n, x, y);
        Assert.True((straight.get_parameter("fc1.weight")! - naive.get_parameter("fc1.weight")!).abs().max().item<float>() > 1e-5f);
    }

    [Fact]
    public void Loading_a_mismatched_state_names_the_problem()
    {
        using var m = TinyModel(4);
        var opt = ParameterGroups.LavisAdamW(m, 1e-3, 0.05);
        var (x, y) = Batch();
        nn.functional.mse_loss(m.call(x), y).backward();
        opt.Step();
        var state = opt.StateDict();
        var tensors = state.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        tensors.Remove("fc1.bias.exp_avg_sq");
        var e = Assert.Throws<InvalidDataException>(() => opt.LoadStateDict(state with { Tensors = tensors }));
        Assert.Contains("fc1.bias.exp_avg_sq", e.Message);
        Assert.Throws<InvalidDataException>(() => OptimizerScalars.FromJson("{not json", "ckpt/optimizer.json"));
    }

    [Fact]
    public void Clip_global_norm_scales_all_gradients_together()
    {
        var p1 = new Parameter(torch.zeros(2));
        var p2 = new Parameter(torch.zeros(1));
        p1.grad = torch.tensor(new float[] { 3, 0 });
        p2.grad = torch.tensor(new float[] { 4 });
        Assert.Equal(5.0, Gradients.ClipGlobalNorm([p1, p2], maxNorm: 10.0), 5);
        Assert.Equal(3f, p1.grad!.data<float>()[0], 5); // below the limit: untouched
        Assert.Equal(5.0, Gradients.ClipGlobalNorm([p1, p2], maxNorm: 1.0), 5);
        Assert.Equal(3f / 5f, p1.grad!.data<float>()[0], 5);
        Assert.Equal(4f / 5f, p2.grad!.data<float>()[0], 5);
    }

    [Fact]
    public void Accumulated_half_batches_give_the_full_batch_gradient()
    {
        var (x, y) = Batch(8);
        using var full = TinyModel(5);
        nn.functional.mse_loss(full.call(x), y).backward();

        using var accum = TinyModel(5);
        var acc = new GradientAccumulator(2);
        var stepNow = new List<bool>();
        foreach (var (lo, hi) in new[] { (0, 4), (4, 8) })
        {
            (nn.functional.mse_loss(accum.call(x[lo..hi]), y[lo..hi]) * acc.LossScale).backward();
            stepNow.Add(acc.MicroStep());
        }
        Assert.Equal([false, true], stepNow);
        foreach (var ((name, pa), (_, pb)) in full.named_parameters().Zip(accum.named_parameters()))
            Assert.True((pa.grad! - pb.grad!).abs().max().item<float>() <= 1e-6f, $"{name}.grad differs");
    }

    [Fact]
    public void Cosine_schedule_matches_lavis_formulas()
    {
        const double init = 1e-4, min = 1e-6, start = 1e-6;
        using var m = TinyModel(6);
        var opt = ParameterGroups.LavisAdamW(m, init, 0.05);
        var s = new LinearWarmupCosineLRScheduler(opt, maxEpoch: 10, minLr: min, initLr: init, warmupSteps: 100, warmupStartLr: start);
        Assert.Equal(start, s.Step(0, 0), 15);
        Assert.Equal(start, opt.LearningRate, 15);
        Assert.Equal(start + (init - start) * 0.25, s.Step(0, 25), 15);
        Assert.Equal(init, s.Step(0, 100), 15);
        Assert.Equal(init, s.Step(0, 5000), 15); // held for the rest of epoch 0
        Assert.Equal((init - min) * 0.5 * (1 + Math.Cos(Math.PI / 10)) + min, s.Step(1, 0), 15);
        Assert.Equal((init - min) * 0.5 + min, s.Step(5, 123), 15); // per epoch: the step within it does not matter
        Assert.Equal(min, s.Step(10, 0), 15);
        Assert.Equal(opt.LearningRate, s.LearningRate(10, 0));
        // warmup_start_lr = -1 means "start at init_lr"; warmup_steps = 0 divides by max(0, 1).
        Assert.Equal(init, new LinearWarmupCosineLRScheduler(null, 10, min, init).Step(0, 0), 15);
    }

    [Fact]
    public void Step_schedule_matches_lavis_formulas()
    {
        var s = new LinearWarmupStepLRScheduler(null, maxEpoch: 20, minLr: 1e-5, initLr: 1e-3, decayRate: 0.5, warmupStartLr: 1e-4, warmupSteps: 10);
        Assert.Equal(1e-4 + (1e-3 - 1e-4) * 0.3, s.Step(0, 3), 15);
        Assert.Equal(1e-3, s.Step(0, 10), 15);
        Assert.Equal(1e-3 * 0.125, s.Step(3, 0), 15);
        Assert.Equal(1e-5, s.Step(12, 0), 15); // 1e-3·0.5^12 < min_lr
    }

    [Fact]
    public void Lr_layer_decay_groups_scale_each_trainable_vit_layer_as_lavis_blip2()
    {
        (string, Parameter) P(string name, long[] shape, bool trains = true) => (name, new Parameter(torch.ones(shape), requires_grad: trains));
        var named = new List<(string, Parameter)>
        {
            P("vision_model.embeddings.class_embedding", [1, 1, 4]),
            P("vision_model.embeddings.patch_embedding.weight", [4, 3, 2, 2]),
            P("vision_model.embeddings.patch_embedding.bias", [4]),
            P("vision_model.encoder.layers.0.self_attn.qkv.weight", [12, 4]),
            P("vision_model.encoder.layers.0.layer_norm1.weight", [4]),
            P("vision_model.encoder.layers.1.mlp.fc1.weight", [8, 4]),
            P("vision_model.post_layernorm.weight", [4]),  // LAVIS's ln_vision: outside the visual encoder
            P("query_tokens", [1, 2, 4]),
            P("qformer.encoder.layer.0.attention.query.weight", [4, 4]),
            P("language_model.shared.weight", [10, 4], trains: false),
        };
        var groups = ParameterGroups.LavisLayerDecay(named, weightDecay: 0.05, lrLayerDecay: 0.5);
        // Two blocks (L = 2): scale 0.5^(L + 1 - id) with id 0 for the embeddings and b + 1 for block b.
        Assert.Equal(
            [("vit_layer_0_decay", 0.125, 0.05), ("vit_layer_0_no_decay", 0.125, 0.0), ("vit_layer_1_decay", 0.25, 0.05),
             ("vit_layer_1_no_decay", 0.25, 0.0), ("vit_layer_2_decay", 0.5, 0.05), ("no_decay", 1.0, 0.0), ("decay", 1.0, 0.05)],
            groups.Select(g => (g.Name, g.LrScale, g.WeightDecay)));
        Assert.Equal(["vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight"], groups[0].Parameters.Select(p => p.Name));
        Assert.Equal(["query_tokens", "qformer.encoder.layer.0.attention.query.weight"], groups[^1].Parameters.Select(p => p.Name));
        Assert.DoesNotContain(groups, g => g.Parameters.Any(p => p.Name.StartsWith("language_model", StringComparison.Ordinal)));
        Assert.Equal(2, ParameterGroups.VitLayerId("vision_model.encoder.layers.1.mlp.fc1.weight", 2));
        Assert.Null(ParameterGroups.VitLayerId("qformer.layernorm.weight", 2));

        // freeze_vit: the ViT trunk is frozen, so no ViT group exists and the decay changes nothing (ln_vision still trains).
        foreach (var (n, p) in named)
            if (n.StartsWith("vision_model.", StringComparison.Ordinal) && !n.Contains("post_layernorm")) p.requires_grad = false;
        var frozen = ParameterGroups.LavisLayerDecay(named, 0.05, 0.5);
        Assert.Equal([("no_decay", 1.0), ("decay", 1.0)], frozen.Select(g => (g.Name, g.LrScale)));
    }

    [Fact]
    public void AdamW_with_beta2_and_a_scaled_group_matches_torch_1_13()
    {
        // tests/data/optim/adamw_beta2.py (torch 1.13.0, float64): three steps on fixed gradients, betas (0.9, 0.95),
        // the second group at lr * 0.8^2 as a lr_layer_decay group; its adamw_beta2.json holds these numbers.
        var a = new Parameter(torch.tensor(new[] { 0.5, -1.0, 2.0 }));
        var b = new Parameter(torch.tensor(new[] { 0.25, -0.75, 1.5, 0.1 }, [2, 2]));
        double[][] gradsA = [[0.1, -0.2, 0.3], [0.05, 0.4, -0.1], [-0.3, 0.2, 0.2]];
        double[][] gradsB = [[1.0, -0.5, 0.2, 0.0], [-0.4, 0.3, 0.1, 2.0], [0.6, 0.6, -1.0, 0.5]];
        var opt = new Scst.Model.Optim.AdamW([new ParameterGroup("decay", [("a", a)], 0.05), new ParameterGroup("vit_layer_1_no_decay", [("b", b)], 0.0, 0.8 * 0.8)],
            lr: 0.01, beta1: 0.9, beta2: 0.95);
        for (var t = 0; t < 3; t++)
        {
            opt.ZeroGrad();
            ((a * torch.tensor(gradsA[t])).sum() + (b * torch.tensor(gradsB[t], [2, 2])).sum()).backward();
            opt.Step();
        }
        double[] expectA = [0.48327758473241494, -0.9973362160028733, 1.976885756135312];
        double[] expectB = [0.23784633467543714, -0.7446310873455172, 1.4905062363371513, 0.09073773637642943];
        var gotA = a.detach().data<double>().ToArray();
        var gotB = b.detach().data<double>().ToArray();
        for (var i = 0; i < 3; i++) Assert.Equal(expectA[i], gotA[i], 1e-12);
        for (var i = 0; i < 4; i++) Assert.Equal(expectB[i], gotB[i], 1e-12);
        // The config path: run.beta2 reaches LAVIS's AdamW.
        using var m = TinyModel(7);
        Assert.Equal(0.95, ParameterGroups.LavisAdamW(m, 1e-3, 0.05, beta2: 0.95).Beta2);
    }
}
