using System.Runtime.InteropServices;
using Scst.Model.Blip2;
using Scst.Model.Checkpoints;
using Scst.Model.Generation;
using Scst.Model.Precision;
using Scst.Model.T5;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>
/// The checkpointed and plain runs must draw the same dropout masks from the global CPU generator and measure this
/// process's peak RSS: nothing else may run beside them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRngCollection { public const string Name = "global CPU generator and process RSS"; }

/// <summary>
/// <c>use_grad_checkpoint</c> on a tiny BLIP-2 with dropout in every part, in train mode: the loss and every parameter
/// gradient of a step with activation checkpointing against the same step without it (same generator seed).
/// </summary>
[Collection(GlobalRngCollection.Name)]
public class GradientCheckpointTests
{
    private const double Dropout = 0.2;
    private readonly ITestOutputHelper _out;

    public GradientCheckpointTests(ITestOutputHelper output) { _out = output; TorchRuntime.Initialize(); }

    internal static Blip2Config Config(double dropout, int size = 1) => new()
    {
        Vision = new Blip2VisionConfig
        {
            HiddenSize = 32 * size, IntermediateSize = 64 * size, NumHiddenLayers = 2 * size, NumAttentionHeads = 4,
            ImageSize = 32 * size, PatchSize = 8, AttentionDropout = dropout,
        },
        QFormer = new Blip2QFormerConfig
        {
            HiddenSize = 32 * size, IntermediateSize = 64 * size, NumHiddenLayers = 2 * size, NumAttentionHeads = 4,
            CrossAttentionFrequency = 1, EncoderHiddenSize = 32 * size, HiddenDropoutProb = dropout, AttentionProbsDropoutProb = dropout,
        },
        Text = new T5Config
        {
            VocabSize = 60 * size, DModel = 32 * size, DKv = 8 * size, DFf = 64 * size, NumLayers = 2 * size, NumDecoderLayers = 2 * size,
            NumHeads = 4, RelativeAttentionNumBuckets = 8, RelativeAttentionMaxDistance = 16, DropoutRate = dropout,
            FeedForwardProj = "gated-gelu", DenseActFn = "gelu", IsGatedAct = true, TieWordEmbeddings = false, ScaleDecoderOutputs = false,
        },
        NumQueryTokens = 4,
    };

    /// <summary>For the memory figures: a small ViT, and a T5 with the most activations (what gradients cross in both regimes).</summary>
    internal static Blip2Config BenchConfig(double dropout) => new()
    {
        Vision = new Blip2VisionConfig
        {
            HiddenSize = 64, IntermediateSize = 128, NumHiddenLayers = 4, NumAttentionHeads = 4, ImageSize = 64, PatchSize = 8,
            AttentionDropout = dropout,
        },
        QFormer = new Blip2QFormerConfig
        {
            HiddenSize = 128, IntermediateSize = 256, NumHiddenLayers = 4, NumAttentionHeads = 4, CrossAttentionFrequency = 2,
            EncoderHiddenSize = 64, HiddenDropoutProb = dropout, AttentionProbsDropoutProb = dropout,
        },
        Text = new T5Config
        {
            VocabSize = 512, DModel = 256, DKv = 32, DFf = 512, NumLayers = 6, NumDecoderLayers = 6, NumHeads = 8,
            RelativeAttentionNumBuckets = 32, RelativeAttentionMaxDistance = 128, DropoutRate = dropout,
            FeedForwardProj = "gated-gelu", DenseActFn = "gelu", IsGatedAct = true, TieWordEmbeddings = false, ScaleDecoderOutputs = false,
        },
        NumQueryTokens = 32,
    };

    /// <summary>Everything trains, fp32: the demo's regime.</summary>
    internal static Blip2T5 Demo(double dropout, int size = 1) => Demo(Config(dropout, size));

    internal static Blip2T5 Demo(Blip2Config config)
    {
        var m = new Blip2T5(config);
        using var g = new Generator(11);
        m.InitWeights(g);
        return m;
    }

    /// <summary>LAVIS's blip2_t5: the same weights saved and loaded with a frozen bf16 ViT trunk and a frozen bf16 T5.</summary>
    internal static Blip2T5 Lavis(double dropout, int size = 1) => Lavis(Config(dropout, size));

    internal static Blip2T5 Lavis(Blip2Config config)
    {
        var dir = Directory.CreateTempSubdirectory("scst-gradckpt-").FullName;
        try
        {
            using (var m = Demo(config)) HfCheckpoint.Save(dir, m, m.Config.ToJson());
            return HfCheckpoint.LoadBlip2T5(dir, Blip2LoadOptions.Lavis(freezeVit: true, ScalarType.BFloat16, null, null));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    internal static (Tensor Pixels, Tensor Prompt, Tensor Labels) Batch(Blip2Config c, int b = 3, int t = 7, int p = 5)
    {
        using var g = new Generator(5);
        var pixels = randn(b, 3, c.Vision.ImageSize, c.Vision.ImageSize, generator: g);
        var prompt = randint(2, c.Text.VocabSize, [b, p], generator: g);
        var labels = randint(2, c.Text.VocabSize, [b, t], generator: g);
        labels[0, t - 1] = tensor(-100L); labels[1, t - 2] = tensor(-100L); labels[1, t - 1] = tensor(-100L);
        return (pixels, prompt, labels);
    }

    /// <summary>One step from the same generator state: loss, every parameter's gradient (null when none), the generator after it, recomputations.</summary>
    private static (float Loss, Dictionary<string, Tensor?> Grads, byte[] RngAfter, long Recomputed) Step(Blip2T5 m, bool checkpoint, Func<Blip2T5, Tensor> loss)
    {
        m.UseGradCheckpoint = checkpoint;
        foreach (var p in m.parameters()) p.grad = null;
        random.manual_seed(1234);
        var before = ActivationCheckpoint.Recomputed;
        float value;
        using (var scope = NewDisposeScope())
        {
            var l = loss(m);
            value = l.item<float>();
            l.backward();
        }
        var grads = m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad is { } g ? g.detach().clone() : null);
        using var state = random.get_rng_state();
        return (value, grads, state.data<byte>().ToArray(), ActivationCheckpoint.Recomputed - before);
    }

    /// <summary>Asserts the same loss, generator state after the step and gradients, bitwise; returns the number of gradients.</summary>
    private int AssertSame(
        (float Loss, Dictionary<string, Tensor?> Grads, byte[] RngAfter, long _) plain,
        (float Loss, Dictionary<string, Tensor?> Grads, byte[] RngAfter, long _) ckpt)
    {
        Assert.Equal(plain.Loss, ckpt.Loss); // the forward is the same computation
        Assert.Equal(plain.RngAfter, ckpt.RngAfter); // the recomputation's draws are undone
        var total = 0;
        foreach (var (name, g) in plain.Grads)
        {
            var h = ckpt.Grads[name];
            Assert.True((g is null) == (h is null), $"{name}: gradient {(g is null ? "absent" : "present")} without checkpointing, not with it");
            if (g is null) continue;
            total++;
            // Bitwise: the recomputation is the same ops on the same values and masks, and the gradients that several
            // blocks add into one tensor (encoder output, image embeddings) are added in the unchecked run's order.
            Assert.True(h!.equal(g).all().item<bool>(), $"{name}: max |Δgrad| {Fixture.MaxDiff(h, g):E3}");
        }
        _out.WriteLine($"loss {plain.Loss:R} both; {total} gradients, all bitwise equal");
        return total;
    }

    private static Tensor CrossEntropy(Blip2T5 m, (Tensor Pixels, Tensor Prompt, Tensor Labels) b) =>
        m.Forward(b.Pixels, b.Prompt, null, b.Labels).Loss;

    [Fact]
    public void DemoRegimeGivesTheSameLossAndGradientsWithCheckpointing()
    {
        using var m = Demo(Dropout);
        m.train();
        var batch = Batch(m.Config);
        var plain = Step(m, false, x => CrossEntropy(x, batch));
        var ckpt = Step(m, true, x => CrossEntropy(x, batch));
        Assert.Equal(0, plain.Recomputed);
        Assert.Equal(2 + 2 + 2 + 2, ckpt.Recomputed); // every ViT layer, Q-Former layer, T5 encoder and decoder block
        var total = AssertSame(plain, ckpt);
        Assert.Equal(m.parameters().Count(), total);
        // Dropout was on: an eval-mode step gives another loss.
        m.eval();
        using (no_grad()) Assert.NotEqual(plain.Loss, CrossEntropy(m, batch).item<float>());
    }

    [Fact]
    public void LavisRegimeCheckpointsTheFrozenT5ThatGradientsCrossAndTheQFormer()
    {
        using var m = Lavis(Dropout);
        Assert.Equal(Dropout, m.Config.Text.DropoutRate);
        m.train();
        var batch = Batch(m.Config);
        var plain = Step(m, false, x => CrossEntropy(x, batch));
        var ckpt = Step(m, true, x => CrossEntropy(x, batch));
        // The frozen ViT's input needs no gradient: it runs as is. Q-Former layers and T5 blocks are checkpointed.
        Assert.Equal(2 + 2 + 2, ckpt.Recomputed);
        var total = AssertSame(plain, ckpt);
        Assert.Equal(m.parameters().Count(p => p.requires_grad), total);
    }

    /// <summary>
    /// SCST's learner pass under bf16 autocast, backward outside the autocast scope (as the trainer runs it), with the
    /// shared T5's own flag in eval (as a rollout replica leaves it) while this model trains: the recomputation must
    /// re-enter the forward's autocast dtype and call mode, or its matmuls and dropout masks differ.
    /// </summary>
    [Fact]
    public void RecomputationRunsUnderTheForwardsAutocastAndCallMode()
    {
        using var m = Lavis(Dropout);
        m.train();
        m.LanguageModel.eval();
        var batch = Batch(m.Config);
        using var g = new Generator(9);
        var sequences = randint(2, m.Config.Text.VocabSize, [batch.Pixels.shape[0] * 2, 6], generator: g);
        sequences[.., 0] = tensor(0L);
        Tensor LogProbs(Blip2T5 x)
        {
            using var amp = Autocast.Enter(ScalarType.BFloat16);
            return x.SequenceLogProbs(batch.Pixels, batch.Prompt, null, sequences).TokenLogProbs.sum().neg();
        }
        var plain = Step(m, false, LogProbs);
        var ckpt = Step(m, true, LogProbs);
        Assert.Equal(2 + 2 + 2, ckpt.Recomputed);
        AssertSame(plain, ckpt);
    }

    [Fact]
    public void EvalNoGradAndGenerationAreUnchangedAndNeverRecompute()
    {
        using var m = Demo(Dropout);
        var batch = Batch(m.Config);
        var before = ActivationCheckpoint.Recomputed;
        // Eval mode with gradients (nothing is checkpointed: plain autograd).
        m.eval();
        var plain = Step(m, false, x => CrossEntropy(x, batch));
        var ckpt = Step(m, true, x => CrossEntropy(x, batch));
        Assert.Equal(0, ckpt.Recomputed);
        AssertSame(plain, ckpt);
        // Train mode without gradients: the same values, and no graph.
        m.train();
        Tensor NoGradLoss(bool on)
        {
            m.UseGradCheckpoint = on;
            random.manual_seed(77);
            using var _ = no_grad();
            return CrossEntropy(m, batch);
        }
        var a = NoGradLoss(false);
        var b = NoGradLoss(true);
        Assert.False(b.requires_grad);
        Assert.Equal(a.item<float>(), b.item<float>());
        // Generation (no_grad, KV cache) in both settings.
        m.eval();
        var options = new GenerationOptions { NumBeams = 2, NumReturnSequences = 2, MaxNewTokens = 5 };
        m.UseGradCheckpoint = false;
        var g0 = m.Generate(batch.Pixels, batch.Prompt, null, options);
        m.UseGradCheckpoint = true;
        var g1 = m.Generate(batch.Pixels, batch.Prompt, null, options);
        Assert.True(g0.Sequences.equal(g1.Sequences).all().item<bool>());
        Assert.True(g0.SequenceScores.equal(g1.SequenceScores).all().item<bool>());
        Assert.Equal(before, ActivationCheckpoint.Recomputed);
    }

    [DllImport("libc", EntryPoint = "mallopt")] private static extern int MallOpt(int param, int value);
    [DllImport("libc", EntryPoint = "malloc_trim")] private static extern int MallocTrim(nuint pad);

    /// <summary>
    /// Peak RSS above the resting RSS of one CE forward + backward on a larger random BLIP-2 (batch 8),
    /// with and without checkpointing, in both regimes (T5 over 64 tokens, 32 labels). Allocations of 128 KB and more are mapped and unmapped one by one
    /// (no heap keeps freed blocks), and the peak is reset before each phase: the phases measure alone in one process.
    /// Minutes of CPU (bf16 matmuls are emulated on most CPUs), so only when asked:
    /// <c>SCST_GRAD_CHECKPOINT_BENCH=1 dotnet test tests/Scst.Model.Tests -c Release --filter Category=Slow</c>.
    /// </summary>
    [SkippableFact]
    [Trait("Category", "Slow")]
    public void CheckpointingLowersThePeakMemoryOfATrainingStep()
    {
        Skip.If(Environment.GetEnvironmentVariable("SCST_GRAD_CHECKPOINT_BENCH") != "1", "SCST_GRAD_CHECKPOINT_BENCH=1 runs the memory measurement");
        Assert.True(MallOpt(-3 /* M_MMAP_THRESHOLD */, 128 * 1024) == 1, "mallopt(M_MMAP_THRESHOLD) failed");
        foreach (var (regime, build) in new (string, Func<Blip2T5>)[] { ("demo (all trains, fp32)", () => Demo(BenchConfig(0.1))), ("LAVIS (frozen bf16 ViT and T5)", () => Lavis(BenchConfig(0.1))) })
        {
            using var m = build();
            m.train();
            var c = m.Config;
            var batch = Batch(c, b: 8, t: 32, p: 32);
            var peaks = new Dictionary<bool, List<double>> { [false] = [], [true] = [] };
            foreach (var on in new[] { false, true, false, true })
            {
                m.UseGradCheckpoint = on;
                foreach (var p in m.parameters()) p.grad = null;
                GC.Collect(); GC.WaitForPendingFinalizers(); MallocTrim(0);
                var rest = ProcessMemory.RssBytes();
                Assert.True(ProcessMemory.ResetPeak(), "/proc/self/clear_refs cannot reset the peak RSS here");
                using (var scope = NewDisposeScope()) CrossEntropy(m, batch).backward();
                peaks[on].Add((ProcessMemory.PeakRssBytes() - rest) / 1e6);
            }
            _out.WriteLine($"{regime}: ViT {c.Vision.NumHiddenLayers}×{c.Vision.HiddenSize} over {c.Vision.NumPositions} tokens, Q-Former {c.QFormer.NumHiddenLayers}×{c.QFormer.HiddenSize}, " +
                $"T5 {c.Text.NumLayers}+{c.Text.NumDecoderLayers}×{c.Text.DModel} over {c.NumQueryTokens}+32 tokens, 32 labels, batch 8: peak RSS above rest, MB, " +
                $"without [{string.Join(", ", peaks[false].Select(x => x.ToString("F1")))}], with [{string.Join(", ", peaks[true].Select(x => x.ToString("F1")))}]");
            Assert.True(peaks[true].Max() < peaks[false].Min(), "checkpointing did not lower the peak");
        }
    }
}
