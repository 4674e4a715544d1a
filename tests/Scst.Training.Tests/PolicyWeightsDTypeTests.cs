using Scst.Model;
using Scst.Model.Blip2;
using Scst.Model.Precision;
using Scst.Model.T5;
using Scst.Model.SafeTensors;
using static TorchSharp.torch;

namespace Scst.Training.Tests;

/// <summary>
/// Weight updates in the dtype rollouts compute in: under bf16 autocast the linear layers' weights and biases travel
/// in bf16, and a replica that loads them computes bit for bit what the learner's full-precision model computes.
/// </summary>
public class PolicyWeightsDTypeTests
{
    public PolicyWeightsDTypeTests() => TorchRuntime.Initialize();

    internal static Blip2T5 Model(ulong seed)
    {
        var m = new Blip2T5(new Blip2Config
        {
            Vision = new Blip2VisionConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 1, NumAttentionHeads = 4, ImageSize = 32, PatchSize = 8 },
            QFormer = new Blip2QFormerConfig
            {
                HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4, CrossAttentionFrequency = 1, EncoderHiddenSize = 32,
                HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0,
            },
            Text = new T5Config
            {
                VocabSize = 60, DModel = 32, DKv = 8, DFf = 64, NumLayers = 1, NumDecoderLayers = 1, NumHeads = 4, RelativeAttentionNumBuckets = 8,
                RelativeAttentionMaxDistance = 16, DropoutRate = 0, FeedForwardProj = "gated-gelu", DenseActFn = "gelu", IsGatedAct = true,
                TieWordEmbeddings = false, ScaleDecoderOutputs = false,
            },
            NumQueryTokens = 4,
        });
        using var g = new Generator(seed);
        m.InitWeights(g);
        m.eval();
        return m;
    }

    internal static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.equal(b).all().item<bool>();

    [Fact]
    public void Under_bf16_autocast_linear_weights_travel_in_bf16_and_the_replica_computes_the_same_bits()
    {
        using var learner = Model(1);
        using var replica = Model(2);
        var file = Path.Combine(Directory.CreateTempSubdirectory("scst-dtype-").FullName, "policy-v1.safetensors");
        PolicyWeights.Export(learner, null, file, ScalarType.BFloat16);
        var full = Path.ChangeExtension(file, ".fp32.safetensors");
        PolicyWeights.Export(learner, null, full);
        var linear = PolicyWeights.AutocastLinearParameters(learner);
        Assert.NotEmpty(linear);

        // In the file: linear weights and biases in bf16, everything else as held; about half the bytes here.
        using (var reader = SafeTensorsReader.Open(file))
            foreach (var e in reader.Entries)
                Assert.Equal(linear.Contains(e.Name) ? "BF16" : "F32", e.DType);
        Assert.True(new FileInfo(file).Length < 0.6 * new FileInfo(full).Length, $"{new FileInfo(file).Length} vs {new FileInfo(full).Length} bytes");

        PolicyWeights.Load(replica, null, file, sha256: null);
        var mine = replica.named_parameters().ToDictionary(p => "model." + p.name, p => p.parameter);
        foreach (var (name, p) in learner.named_parameters().Select(p => ("model." + p.name, p.parameter)))
        {
            using var expected = linear.Contains(name) ? p.to(ScalarType.BFloat16).to(p.dtype) : p.clone();
            Assert.True(Same(expected, mine[name]), $"{name}: the replica holds the learner's weight{(linear.Contains(name) ? " cast to bf16" : "")}");
        }

        // What a rollout computes: every linear layer casts its weights to bf16 first, so the bits agree.
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = new Generator(3);
        var pixels = randn([2, 3, 32, 32], generator: g);
        var labels = randint(1, 60, [2, 5], generator: g);
        using (Autocast.Enter(ScalarType.BFloat16))
        {
            var (lossL, logitsL) = learner.Forward(pixels, null, null, labels);
            var (lossR, logitsR) = replica.Forward(pixels, null, null, labels);
            Assert.True(Same(logitsL, logitsR), $"logits differ by up to {(logitsL - logitsR).abs().max().to(ScalarType.Float32).item<float>()}");
            Assert.True(Same(lossL, lossR));
        }
        // Without autocast the replica's layers would compute in fp32 from rounded weights: only bf16 autocast ships bf16.
        using (Autocast.Enter(null))
            Assert.False(Same(learner.Forward(pixels, null, null, labels).Logits, replica.Forward(pixels, null, null, labels).Logits));
    }
}
