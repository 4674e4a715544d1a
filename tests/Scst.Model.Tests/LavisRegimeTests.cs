using Scst.Model.Blip2;
using Scst.Model.Checkpoints;
using Scst.Model.Precision;
using Scst.Model.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>LAVIS's blip2_t5 regime on the tiny BLIP-2 fixture: what trains, the dtypes each part is held and computed in, sharing, loading.</summary>
public class LavisRegimeTests
{
    private const string Name = "blip2_t5_tiny";
    public LavisRegimeTests() => TorchRuntime.Initialize();

    private static Blip2LoadOptions Lavis(string? share = null, int? imageSize = null) =>
        Blip2LoadOptions.Lavis(freezeVit: true, ScalarType.BFloat16, imageSize, share);

    [Fact]
    public void TrainableSetIsQFormerQueriesProjectionAndLnVisionInFp32()
    {
        using var m = HfCheckpoint.LoadBlip2T5(Fixture.Dir(Name), Lavis());
        foreach (var (name, p) in m.named_parameters())
        {
            var trains = name.StartsWith("qformer.", StringComparison.Ordinal) || name == "query_tokens"
                || name.StartsWith("language_projection.", StringComparison.Ordinal) || name.StartsWith("vision_model.post_layernorm.", StringComparison.Ordinal);
            Assert.True(trains == p.requires_grad, $"{name}: requires_grad {p.requires_grad}");
            Assert.True((trains ? ScalarType.Float32 : ScalarType.BFloat16) == p.dtype, $"{name}: {p.dtype}");
        }
        // The frozen values are the checkpoint's, rounded to bf16; the trainable ones exact.
        var reference = HfCheckpoint.ReadWeights(Fixture.Dir(Name));
        var ps = m.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(0.0, (ps["qformer.layernorm.weight"] - reference["qformer.layernorm.weight"]).abs().max().item<float>());
        using var lm = reference["language_model.shared.weight"].to(ScalarType.BFloat16);
        Assert.True(ps["language_model.shared.weight"].equal(lm).all().item<bool>());
        foreach (var t in reference.Values) t.Dispose();
    }

    [Fact]
    public void MixedDtypesRunInTheirStoredDtypeAndAutocastComputesLinearsInBf16()
    {
        using var scope = NewDisposeScope();
        var r = Fixture.Reference(Name);
        using var m = HfCheckpoint.LoadBlip2T5(Fixture.Dir(Name), Lavis());
        var pix = Fixture.Floats(r["pixel_values"]!);
        var labels = Fixture.Longs(r["labels"]!);
        var (vision, qformer, projected) = m.EncodeImage(pix);
        Assert.Equal(ScalarType.Float32, vision.dtype); // ln_vision in fp32 over the bf16 trunk
        Assert.Equal(ScalarType.Float32, qformer.dtype);
        var (loss, _) = m.Forward(pix, Fixture.Longs(r["input_ids"]!), null, labels);
        Assert.Equal(ScalarType.Float32, loss.dtype);
        // Close to the fp32 model's loss: bf16 rounding of the frozen parts only.
        Assert.True(Math.Abs(loss.item<float>() - r["loss"]!.GetValue<double>()) < 0.05, $"loss {loss.item<float>()}");
        m.train();
        loss = m.Forward(pix, Fixture.Longs(r["input_ids"]!), null, labels).Loss;
        loss.backward();
        var q = m.QFormer.named_parameters().First(p => p.name.EndsWith("query.weight", StringComparison.Ordinal)).parameter;
        Assert.Equal(ScalarType.Float32, q.grad!.dtype);
        Assert.Null(m.LanguageModel.parameters().First().grad);

        using (Autocast.Enter(ScalarType.BFloat16))
        {
            var (_, qf, proj) = m.EncodeImage(pix);
            Assert.Equal(ScalarType.Float32, qf.dtype); // post-norm output: fp32 residual + layer norm
            Assert.Equal(ScalarType.BFloat16, proj.dtype); // the projection is a matmul
            var (ampLoss, _) = m.Forward(pix, Fixture.Longs(r["input_ids"]!), null, labels);
            Assert.Equal(ScalarType.Float32, ampLoss.dtype);
            ampLoss.backward();
            Assert.Equal(ScalarType.Float32, q.grad!.dtype); // fp32 master weights
        }
        Assert.Null(Autocast.DType);
    }

    [Fact]
    public void ImageSizeOtherThanTheCheckpointsInterpolatesPositionEmbeddings()
    {
        using var scope = NewDisposeScope();
        var r = Fixture.Reference(Name);
        var cfg = HfCheckpoint.ReadConfig(Fixture.Dir(Name));
        var patch = cfg["vision_config"]!["patch_size"]!.GetValue<int>();
        var size = cfg["vision_config"]!["image_size"]!.GetValue<int>() + 2 * patch;
        using var m = HfCheckpoint.LoadBlip2T5(Fixture.Dir(Name), Lavis(imageSize: size));
        var pos = m.named_parameters().First(p => p.name == "vision_model.embeddings.position_embedding").parameter;
        Assert.Equal(1 + (size / patch) * (size / patch), pos.shape[1]);
        using var noGrad = no_grad();
        var (vision, _, _) = m.EncodeImage(Fixture.Floats(r["pixel_values"]!).repeat(1, 1, 2, 2).narrow(2, 0, size).narrow(3, 0, size));
        Assert.Equal(pos.shape[1], vision.shape[1]);
        var bad = Assert.Throws<InvalidDataException>(() => HfCheckpoint.LoadBlip2T5(Fixture.Dir(Name), Lavis(imageSize: size + 1)));
        Assert.Contains("not a multiple of the checkpoint's patch_size", bad.Message);
    }

    [Fact]
    public void ModelsWithTheSameShareKeyHoldOneFrozenBase()
    {
        using var scope = NewDisposeScope();
        var key = "test-share-" + Guid.NewGuid();
        var r = Fixture.Reference(Name);
        var pix = Fixture.Floats(r["pixel_values"]!);
        var a = HfCheckpoint.LoadBlip2T5(Fixture.Dir(Name), Lavis(key));
        var b = HfCheckpoint.LoadBlip2T5(Fixture.Dir(Name), Lavis(key));
        Assert.Equal(2, Blip2FrozenBase.Users(key));
        Assert.Same(a.LanguageModel, b.LanguageModel);
        Assert.Same(a.VisionModel.Trunk.Encoder, b.VisionModel.Trunk.Encoder);
        Assert.NotSame(a.QFormer, b.QFormer);
        Assert.NotSame(a.VisionModel.PostLayerNorm, b.VisionModel.PostLayerNorm);
        using (no_grad())
        {
            var ea = a.EncodeImage(pix).Projected;
            a.train(); // train() reaches the shared modules too; b's calls must still run in b's (eval) mode
            var eb = b.EncodeImage(pix).Projected;
            Assert.True(ea.equal(eb).all().item<bool>());
        }
        a.Dispose();
        Assert.Equal(1, Blip2FrozenBase.Users(key));
        using (no_grad())
            Assert.Equal(ScalarType.Float32, b.Forward(pix, Fixture.Longs(r["input_ids"]!), null, Fixture.Longs(r["labels"]!)).Loss.dtype);
        b.Dispose();
        Assert.Equal(0, Blip2FrozenBase.Users(key));
        // A third load with the key finds nothing live and reads the folder again.
        using var c = HfCheckpoint.LoadBlip2T5(Fixture.Dir(Name), Lavis(key));
        Assert.Equal(1, Blip2FrozenBase.Users(key));
        c.Dispose();
    }

    [Fact]
    public void ReaderReadsATensorPastFourGiBInASparseShard()
    {
        // A shard whose last tensor starts past 4 GiB: every offset must be 64-bit. The file is sparse (no disk used).
        var dir = Directory.CreateTempSubdirectory("scst-sparse-").FullName;
        try
        {
            var path = Path.Combine(dir, "model-00001-of-00001.safetensors");
            const long pad = (4L << 30) + 12345;
            var header = $"{{\"pad\":{{\"dtype\":\"U8\",\"shape\":[{pad}],\"data_offsets\":[0,{pad}]}},\"tail\":{{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[{pad},{pad + 24}]}}}}";
            var json = System.Text.Encoding.UTF8.GetBytes(header.PadRight((header.Length + 7) / 8 * 8));
            using (var fs = File.Create(path))
            {
                fs.Write(BitConverter.GetBytes((long)json.Length));
                fs.Write(json);
                fs.Seek(pad, SeekOrigin.Current);
                foreach (var v in new float[] { 1, 2, 3, 4, 5, 6.5f }) fs.Write(BitConverter.GetBytes(v));
            }
            Assert.True(new FileInfo(path).Length > 4L << 30);
            using var reader = SafeTensorsReader.Open(path);
            using var tail = reader.Read("tail");
            Assert.Equal(new long[] { 2, 3 }, tail.shape);
            Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6.5f }, tail.data<float>().ToArray());
            // A truncated shard is refused with its name, not read past its end.
            using (var fs = new FileStream(path, FileMode.Open)) fs.SetLength(fs.Length - 4);
            var e = Assert.Throws<InvalidDataException>(() => SafeTensorsReader.Open(path));
            Assert.Contains("tensor 'tail': data_offsets", e.Message);
            Assert.Contains(path, e.Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void DropoutInSharedModulesFollowsTheCallingModel()
    {
        using var scope = NewDisposeScope();
        using var drop = new CallerDropout(0.5);
        var x = ones(1000);
        drop.train();
        using (CallMode.Enter(false)) Assert.True(drop.forward(x).equal(x).all().item<bool>()); // an eval-mode caller: no dropout
        drop.eval();
        using (CallMode.Enter(true)) Assert.True(drop.forward(x).eq(0).sum().item<long>() > 100); // a training caller: dropout
        Assert.True(drop.forward(x).equal(x).all().item<bool>()); // no caller: the module's own mode
    }
}

public class AutocastTests
{
    public AutocastTests() => TorchRuntime.Initialize();

    [Fact]
    public void AFrozenBf16LinearComputedInFp32GivesTheGradientOfTheWidenedLayer()
    {
        using var scope = NewDisposeScope();
        using var layer = TorchSharp.torch.nn.Linear(6, 4, dtype: ScalarType.BFloat16);
        foreach (var p in layer.parameters()) p.requires_grad = false;
        using var g = new TorchSharp.torch.Generator(3);
        var x = randn(5, 6, generator: g).requires_grad_(true);
        Tensor y;
        using (Autocast.Enter(ScalarType.Float32)) y = Autocast.Linear(layer, x);
        Assert.Equal(ScalarType.Float32, y.dtype);
        var weights = randn(5, 4, generator: g);
        (y * weights).sum().backward();
        var viaFunction = x.grad!.clone();

        var x2 = x.detach().clone().requires_grad_(true);
        var y2 = TorchSharp.torch.nn.functional.linear(x2, layer.weight!.to(ScalarType.Float32), layer.bias!.to(ScalarType.Float32));
        (y2 * weights).sum().backward();
        Assert.Equal(0f, (y - y2).abs().max().item<float>());
        Assert.True((viaFunction - x2.grad!).abs().max().item<float>() < 1e-6);
    }
}
