using Scst.Model.Blip2;
using Scst.Model.Checkpoints;
using Scst.Model.Generation;
using Scst.Model.T5;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>The learner's teacher-forced log-probs, CE loss and sampling behaviour.</summary>
public class LearnerAndSamplingTests
{
    public LearnerAndSamplingTests() => TorchRuntime.Initialize();

    [Fact]
    public void TeacherForcedLogProbsOfBeamsEqualTheirTransitionScoresWithFiniteGradients()
    {
        using var scope = NewDisposeScope();
        var r = Fixture.Reference("blip2_t5_tiny");
        using var m = HfCheckpoint.LoadBlip2T5(Fixture.Dir("blip2_t5_tiny"));
        var pix = Fixture.Floats(r["pixel_values"]!);
        var ids = Fixture.Longs(r["input_ids"]!);
        using var g = m.Generate(pix, ids, null, new GenerationOptions { NumBeams = 3, NumReturnSequences = 3, MaxNewTokens = 6 });
        var (lp, mask) = m.SequenceLogProbs(pix, ids, null, g.Sequences);
        Assert.True(Fixture.MaxDiff(lp.detach(), g.TokenLogProbs) <= 1e-4);
        Assert.Equal(g.TokenMask.data<bool>().ToArray(), mask.data<bool>().ToArray());
        Assert.True(Fixture.MaxDiff((lp.detach().sum(1) / mask.sum(1).to(ScalarType.Float32)), g.SequenceScores) <= 1e-4);
        (-lp.sum()).backward();
        var grads = m.parameters().Select(p => p.grad).Where(x => x is not null).ToList();
        Assert.NotEmpty(grads);
        Assert.All(grads, gr => Assert.True(gr!.isfinite().all().item<bool>()));
        var total = grads.Sum(gr => gr!.abs().sum().item<float>());
        Assert.True(total > 0);
        Assert.True(m.VisionModel.parameters().All(p => p.grad is not null && p.grad.abs().sum().item<float>() > 0),
            "gradients reach the vision tower through the Q-Former and projection");
    }

    [Fact]
    public void GreedyTokenLogProbsEqualTeacherForcedUnderTheMask()
    {
        using var scope = NewDisposeScope();
        var r = Fixture.Reference("t5_v11_untied");
        using var m = HfCheckpoint.LoadT5(Fixture.Dir("t5_v11_untied"));
        var ids = Fixture.Longs(r["input_ids"]!); var am = Fixture.Longs(r["attention_mask"]!);
        var enc = m.Encode(ids, null, am);
        using var g = Seq2SeqGeneration.Generate(m, enc.detach(), am, new GenerationOptions { MaxNewTokens = 8 });
        var (lp, mask) = Seq2SeqGeneration.SequenceLogProbs(m, enc, am, g.Sequences);
        Assert.True(Fixture.MaxDiff(lp.detach(), g.TokenLogProbs * g.TokenMask.to(ScalarType.Float32)) <= 1e-4);
        Assert.Equal(g.TokenMask.data<bool>().ToArray(), mask.data<bool>().ToArray());
    }

    [Fact]
    public void CrossEntropyIgnoresMinus100AndSupportsLabelSmoothing()
    {
        using var scope = NewDisposeScope();
        var logits = tensor(new float[] { 2, 0, -1, 0.5f, 0.5f, 0.5f }).reshape(1, 2, 3);
        var labels = tensor(new long[] { 0, -100 }).reshape(1, 2);
        var expected = -Math.Log(Math.Exp(2) / (Math.Exp(2) + 1 + Math.Exp(-1)));
        Assert.Equal(expected, T5ForConditionalGeneration.CrossEntropy(logits, labels).item<float>(), 5);
        var smoothed = T5ForConditionalGeneration.CrossEntropy(logits, labels, 0.1).item<float>();
        Assert.True(smoothed > expected);
    }

    private static (T5ForConditionalGeneration, Tensor, Tensor) Model()
    {
        var r = Fixture.Reference("t5_relu_tied");
        var m = HfCheckpoint.LoadT5(Fixture.Dir("t5_relu_tied"));
        var ids = Fixture.Longs(r["input_ids"]!); var am = Fixture.Longs(r["attention_mask"]!);
        using var _ = no_grad();
        return (m, m.Encode(ids, null, am), am);
    }

    [Fact]
    public void SamplingWithTheSameSeedReproducesAndDifferentSeedsDiffer()
    {
        using var scope = NewDisposeScope();
        var (m, enc, am) = Model();
        long[] Run(ulong seed)
        {
            using var gen = new Generator(seed, CPU);
            using var g = Seq2SeqGeneration.Generate(m, enc, am, new GenerationOptions { DoSample = true, NumReturnSequences = 8, MaxNewTokens = 8, Generator = gen, Temperature = 1.5 });
            Assert.Equal(16, g.Sequences.shape[0]);
            return g.Sequences.data<long>().ToArray();
        }
        Assert.Equal(Run(7), Run(7));
        Assert.NotEqual(Run(7), Run(8));
        m.Dispose();
    }

    [Fact]
    public void TopKAndTopPRestrictTheSupport()
    {
        using var scope = NewDisposeScope();
        var logits = tensor(new float[] { 3, 2, 1, 0, -1 }).reshape(1, 5);
        var k2 = Seq2SeqGeneration.WarpLogits(logits, 1.0, 2, 1.0);
        Assert.Equal(new[] { true, true, false, false, false }, k2.isfinite().data<bool>().ToArray());
        // softmax([3,2,1,0,-1]) ≈ [.64,.23,.09,.03,.01]: top-p 0.8 keeps the two tokens whose mass first reaches 0.8.
        var p8 = Seq2SeqGeneration.WarpLogits(logits, 1.0, 0, 0.8);
        Assert.Equal(new[] { true, true, false, false, false }, p8.isfinite().data<bool>().ToArray());

        var (m, enc, am) = Model();
        using var gen = new Generator(3, CPU);
        using var gk = Seq2SeqGeneration.Generate(m, enc, am, new GenerationOptions { DoSample = true, NumReturnSequences = 16, MaxNewTokens = 1, TopK = 1, Generator = gen, Temperature = 2.0 });
        using var greedy = Seq2SeqGeneration.Generate(m, enc, am, new GenerationOptions { MaxNewTokens = 1 });
        // Top-1 sampling is greedy: every sample's first token is the argmax.
        var first = gk.Sequences.select(1, 1).reshape(2, 16);
        var arg = greedy.Sequences.select(1, 1);
        Assert.True(first.eq(arg.unsqueeze(1)).all().item<bool>());
        m.Dispose();
    }

    [Fact]
    public void MinNewTokensDelaysEos()
    {
        using var scope = NewDisposeScope();
        var (m, enc, am) = Model();
        using var g = Seq2SeqGeneration.Generate(m, enc, am, new GenerationOptions { NumBeams = 3, NumReturnSequences = 3, MaxNewTokens = 8, MinNewTokens = 5 });
        var gen = g.Sequences.narrow(1, 1, 5);
        Assert.False(gen.eq(1).any().item<bool>());
        m.Dispose();
    }

    [Fact]
    public void RandomInitBuildsATrainableTinyBlip2()
    {
        using var scope = NewDisposeScope();
        var cfg = new Blip2Config
        {
            Vision = new Blip2VisionConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 1, NumAttentionHeads = 4, ImageSize = 32, PatchSize = 16 },
            QFormer = new Blip2QFormerConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 1, NumAttentionHeads = 4, CrossAttentionFrequency = 1, EncoderHiddenSize = 32 },
            Text = new T5Config { VocabSize = 20, DModel = 32, DKv = 8, DFf = 64, NumLayers = 1, NumDecoderLayers = 1, NumHeads = 4, FeedForwardProj = "gated-gelu", DenseActFn = "gelu", IsGatedAct = true, TieWordEmbeddings = false, ScaleDecoderOutputs = false, DropoutRate = 0 },
            NumQueryTokens = 4,
        };
        using var gen = new Generator(1, CPU);
        using var m = new Blip2T5(cfg);
        m.InitWeights(gen);
        var pix = randn(2, 3, 32, 32);
        var labels = tensor(new long[] { 5, 6, 1, 7, 1, -100 }).reshape(2, 3);
        var opt = optim.AdamW(m.parameters(), 1e-2);
        float first = 0, last = 0;
        for (var i = 0; i < 20; i++)
        {
            using var step = NewDisposeScope();
            opt.zero_grad();
            var (loss, _) = m.Forward(pix, null, null, labels);
            loss.backward();
            opt.step();
            if (i == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.True(last < first * 0.5, $"loss {first} → {last}");
    }
}
