using Scst.Model.Checkpoints;
using Scst.Model.SafeTensors;
using Scst.Model.T5;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>Safetensors round-trips, our SHA-256 checkpoints, and clear errors for bad folders.</summary>
public sealed class CheckpointTests : IDisposable
{
    private readonly string _tmp = Path.Combine(Path.GetTempPath(), "scst-model-tests-" + Guid.NewGuid().ToString("N"));
    public CheckpointTests() { TorchRuntime.Initialize(); Directory.CreateDirectory(_tmp); }
    public void Dispose() { if (Directory.Exists(_tmp)) Directory.Delete(_tmp, recursive: true); }

    [Fact]
    public void SafeTensorsRoundTripsEveryDType()
    {
        using var scope = NewDisposeScope();
        var t = new Dictionary<string, Tensor>
        {
            ["f32"] = randn(3, 4), ["f16"] = randn(5).to(ScalarType.Float16), ["bf16"] = randn(2, 2).to(ScalarType.BFloat16),
            ["i64"] = tensor(new long[] { -1, long.MaxValue, 7 }), ["scalar"] = tensor(3.5f), ["empty"] = zeros(0, 3),
        };
        var path = Path.Combine(_tmp, "x.safetensors");
        SafeTensorsFile.Write(path, t, new Dictionary<string, string> { ["k"] = "v" });
        var (back, meta) = SafeTensorsFile.Read(path);
        Assert.Equal("v", meta["k"]);
        foreach (var (k, v) in t)
        {
            Assert.Equal(v.dtype, back[k].dtype);
            Assert.Equal(v.shape, back[k].shape);
            Assert.True(v.allclose(back[k], 0, 0), k);
        }
    }

    [Fact]
    public void SavedCheckpointReloadsIdenticallyAndRefusesAShaMismatch()
    {
        using var scope = NewDisposeScope();
        using var m = HfCheckpoint.LoadT5(Fixture.Dir("t5_v11_untied"));
        var dir = Path.Combine(_tmp, "ckpt");
        var sha = HfCheckpoint.Save(dir, m, m.Config.ToJson());
        Assert.Equal(64, sha.Length);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
        using var back = (T5ForConditionalGeneration)HfCheckpoint.LoadVerified(dir);
        var a = m.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in back.named_parameters()) Assert.True(p.allclose(a[name], 0, 0), name);
        Assert.Equal(m.Config, back.Config);

        var weights = Path.Combine(dir, HfCheckpoint.WeightsFile);
        var bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 0x5A;
        File.WriteAllBytes(weights, bytes);
        var e = Assert.Throws<InvalidDataException>(() => HfCheckpoint.LoadVerified(dir));
        Assert.Contains("SHA-256 mismatch", e.Message);

        File.Delete(weights + HfCheckpoint.ShaSuffix);
        var e2 = Assert.Throws<FileNotFoundException>(() => HfCheckpoint.LoadVerified(dir));
        Assert.Contains("unverified", e2.Message);
    }

    private string CopyFixtureWith(string name, Action<Dictionary<string, Tensor>> edit)
    {
        var src = Fixture.Dir(name);
        var dir = Path.Combine(_tmp, name + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(src, "config.json"), Path.Combine(dir, "config.json"));
        var (t, meta) = SafeTensorsFile.Read(Path.Combine(src, "model.safetensors"));
        edit(t);
        SafeTensorsFile.Write(Path.Combine(dir, "model.safetensors"), t, meta);
        return dir;
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        var dir = CopyFixtureWith("t5_v11_untied", t => t.Remove("decoder.block.1.layer.2.DenseReluDense.wo.weight"));
        var e = Assert.Throws<InvalidDataException>(() => HfCheckpoint.LoadT5(dir));
        Assert.Contains("missing tensor 'decoder.block.1.layer.2.DenseReluDense.wo.weight'", e.Message);
    }

    [Fact]
    public void TiedFolderWithoutHeadLoadsButUntiedOneNeedsIt()
    {
        var dir = CopyFixtureWith("t5_v11_untied", t => t.Remove("lm_head.weight"));
        var e = Assert.Throws<InvalidDataException>(() => HfCheckpoint.LoadT5(dir));
        Assert.Contains("'lm_head.weight'", e.Message);
    }

    [Fact]
    public void WrongShapeIsNamedWithBothShapes()
    {
        var dir = CopyFixtureWith("t5_relu_tied", t => t["encoder.block.0.layer.0.SelfAttention.q.weight"] = zeros(16, 32));
        var e = Assert.Throws<InvalidDataException>(() => HfCheckpoint.LoadT5(dir));
        Assert.Contains("'encoder.block.0.layer.0.SelfAttention.q.weight' has shape [16, 32] but the model expects [32, 32]", e.Message);
    }

    [Fact]
    public void UnexpectedTensorIsNamed()
    {
        var dir = CopyFixtureWith("t5_relu_tied", t => t["encoder.block.0.layer.0.SelfAttention.extra.weight"] = zeros(2));
        var e = Assert.Throws<InvalidDataException>(() => HfCheckpoint.LoadT5(dir));
        Assert.Contains("unexpected tensor 'encoder.block.0.layer.0.SelfAttention.extra.weight'", e.Message);
    }

    [Fact]
    public void Hf4StyleAliasesAndSplitVisionBiasesLoad()
    {
        // transformers 4.x files repeat shared.weight as encoder/decoder.embed_tokens and keep q_bias/v_bias apart.
        var dir = CopyFixtureWith("blip2_t5_tiny", t =>
        {
            t["language_model.encoder.embed_tokens.weight"] = t["language_model.shared.weight"].clone();
            var qkv = t["vision_model.encoder.layers.0.self_attn.qkv.bias"];
            t["vision_model.encoder.layers.0.self_attn.q_bias"] = qkv.narrow(0, 0, 32).clone();
            t["vision_model.encoder.layers.0.self_attn.v_bias"] = qkv.narrow(0, 64, 32).clone();
            t.Remove("vision_model.encoder.layers.0.self_attn.qkv.bias");
        });
        using var m = HfCheckpoint.LoadBlip2T5(dir);
        using var reference = HfCheckpoint.LoadBlip2T5(Fixture.Dir("blip2_t5_tiny"));
        foreach (var n in new[] { "q_bias", "v_bias" })
        {
            var name = "vision_model.encoder.layers.0.self_attn." + n;
            var a = m.named_parameters().Single(p => p.name == name).parameter;
            var b = reference.named_parameters().Single(p => p.name == name).parameter;
            Assert.Equal(0f, (a - b).abs().max().item<float>());
        }
    }

    [Fact]
    public void A5StyleQkvBiasWithANonZeroKeyPartIsRefused()
    {
        var dir = CopyFixtureWith("blip2_t5_tiny", t => t["vision_model.encoder.layers.0.self_attn.qkv.bias"].narrow(0, 40, 1).fill_(0.5));
        var e = Assert.Throws<InvalidDataException>(() => HfCheckpoint.LoadBlip2T5(dir));
        Assert.Contains("'vision_model.encoder.layers.0.self_attn.qkv.bias' has a non-zero key bias", e.Message);
    }

    [Fact]
    public void CorruptedHeaderIsReported()
    {
        var dir = Path.Combine(_tmp, "bad"); Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(Fixture.Dir("t5_relu_tied"), "config.json"), Path.Combine(dir, "config.json"));
        var bytes = File.ReadAllBytes(Path.Combine(Fixture.Dir("t5_relu_tied"), "model.safetensors"));
        bytes[8] = (byte)'#';
        File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), bytes);
        var e = Assert.Throws<InvalidDataException>(() => HfCheckpoint.LoadT5(dir));
        Assert.True(e.Message.Contains("corrupted safetensors header"), e.Message);
        bytes = File.ReadAllBytes(Path.Combine(Fixture.Dir("t5_relu_tied"), "model.safetensors"));
        File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), bytes[..5]);
        Assert.Contains("not a safetensors file", Assert.Throws<InvalidDataException>(() => HfCheckpoint.LoadT5(dir)).Message);
        File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), bytes[..(bytes.Length - 8)]);
        Assert.Contains("data_offsets", Assert.Throws<InvalidDataException>(() => HfCheckpoint.LoadT5(dir)).Message);
    }

    [Fact]
    public void FoldersWithoutConfigOrWeightsOrWithOnlyPicklesAreRefused()
    {
        Assert.Throws<DirectoryNotFoundException>(() => HfCheckpoint.Load(Path.Combine(_tmp, "nope")));
        var dir = Path.Combine(_tmp, "empty"); Directory.CreateDirectory(dir);
        Assert.Contains("no config.json", Assert.Throws<FileNotFoundException>(() => HfCheckpoint.Load(dir)).Message);
        File.Copy(Path.Combine(Fixture.Dir("t5_relu_tied"), "config.json"), Path.Combine(dir, "config.json"));
        Assert.Contains("neither model.safetensors", Assert.Throws<FileNotFoundException>(() => HfCheckpoint.Load(dir)).Message);
        File.WriteAllBytes(Path.Combine(dir, "pytorch_model.bin"), [1, 2, 3]);
        Assert.Contains("only pickle weights", Assert.Throws<FileNotFoundException>(() => HfCheckpoint.Load(dir)).Message);
    }
}
