using System.Runtime.InteropServices;
using Scst.Model.Checkpoints;
using Scst.Model.SafeTensors;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>The streaming safetensors writer against <see cref="SafeTensorsFile.Serialize"/>, and the synthetic values it is fed.</summary>
public sealed class SafeTensorsStreamWriterTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("scst-stream-").FullName;
    public SafeTensorsStreamWriterTests() => TorchRuntime.Initialize();
    public void Dispose() { if (Directory.Exists(_tmp)) Directory.Delete(_tmp, recursive: true); }

    private static readonly Dictionary<ScalarType, string> DTypes = new()
    {
        [ScalarType.Float32] = "F32", [ScalarType.Float16] = "F16", [ScalarType.BFloat16] = "BF16", [ScalarType.Float64] = "F64",
        [ScalarType.Int64] = "I64", [ScalarType.Int32] = "I32", [ScalarType.Byte] = "U8", [ScalarType.Bool] = "BOOL",
    };

    /// <summary>Writes <paramref name="tensors"/> through the stream writer, its fill copying each tensor's bytes.</summary>
    private string Stream(Dictionary<string, Tensor> tensors, Dictionary<string, string>? meta, int buffer)
    {
        var bytes = tensors.ToDictionary(kv => kv.Key, kv => kv.Value.NumberOfElements == 0 ? [] : kv.Value.contiguous().bytes.ToArray());
        var entries = tensors.Select(kv => new SafeTensorEntry(kv.Key, DTypes[kv.Value.dtype], kv.Value.shape)).ToList();
        var path = Path.Combine(_tmp, $"s{buffer}.safetensors");
        SafeTensorsStreamWriter.Write(path, entries, (e, offset, dst) =>
        {
            Assert.Equal(0, offset % e.ElementSize);
            Assert.Equal(0, dst.Length % e.ElementSize);
            bytes[e.Name].AsSpan((int)offset, dst.Length).CopyTo(dst);
        }, meta, buffer);
        return path;
    }

    [Theory]
    [InlineData(64)]      // many chunks per tensor, several tensors per buffer, odd element sizes interleaved
    [InlineData(100)]     // a buffer that no element size divides
    [InlineData(1 << 20)] // everything in one buffer
    public void Output_equals_Serialize_byte_for_byte(int buffer)
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["z.weight"] = randn(7, 13), ["a.bias"] = randn(5), ["m.half"] = randn(9).to(ScalarType.Float16),
            ["m.bf16"] = randn(3, 3).to(ScalarType.BFloat16), ["b.u8"] = randint(0, 255, [11]).to(ScalarType.Byte),
            ["c.f64"] = randn(4).to(ScalarType.Float64), ["c.i64"] = tensor(new long[] { -1, long.MaxValue, 3 }),
            ["d.bool"] = tensor(new[] { true, false, true }), ["e.scalar"] = tensor(2.5f), ["f.empty"] = zeros(0, 4),
            ["layers.10.x"] = randn(33), ["layers.2.x"] = randn(2, 2, 2),
        };
        foreach (var meta in new[] { new Dictionary<string, string> { ["format"] = "pt", ["note"] = "x" }, null })
        {
            var expected = SafeTensorsFile.Serialize(tensors, meta);
            var path = Stream(tensors, meta, buffer);
            Assert.Equal(expected, File.ReadAllBytes(path));
            var layout = SafeTensorsStreamWriter.Plan(tensors.Select(kv => new SafeTensorEntry(kv.Key, DTypes[kv.Value.dtype], kv.Value.shape)), meta);
            Assert.Equal(expected.LongLength, layout.FileBytes);
        }
        Assert.Empty(Directory.GetFiles(_tmp, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void A_failing_fill_leaves_neither_the_file_nor_a_temp_file()
    {
        var path = Path.Combine(_tmp, "fail.safetensors");
        var entries = new[] { new SafeTensorEntry("a", "F32", [1000]), new SafeTensorEntry("b", "F32", [1000]) };
        var e = Assert.Throws<InvalidOperationException>(() => SafeTensorsStreamWriter.Write(path, entries, (t, _, _) =>
        {
            if (t.Name == "b") throw new InvalidOperationException("boom");
        }, bufferBytes: 256));
        Assert.Equal("boom", e.Message);
        Assert.Empty(Directory.GetFiles(_tmp));
        Assert.Throws<ArgumentException>(() => SafeTensorsStreamWriter.Plan([new SafeTensorEntry("a", "F32", [1]), new SafeTensorEntry("a", "F32", [2])]));
    }

    [Fact]
    public void Synthetic_values_do_not_depend_on_chunking_and_have_the_intended_statistics()
    {
        var entries = new[]
        {
            new SafeTensorEntry("enc.layer.0.dense.weight", "F32", [301, 7]), new SafeTensorEntry("enc.layer.0.dense.bias", "F32", [301]),
            new SafeTensorEntry("enc.layer.0.output.LayerNorm.weight", "F32", [301]), new SafeTensorEntry("vision.self_attn.q_bias", "F32", [5]),
            new SafeTensorEntry("t5.block.0.layer.0.layer_norm.weight", "F32", [9]), new SafeTensorEntry("odd", "F32", [3]),
        };
        var small = SafeTensorsStreamWriter.Write(Path.Combine(_tmp, "small.safetensors"), entries, SyntheticWeights.Filler(7), bufferBytes: 68);
        var large = SafeTensorsStreamWriter.Write(Path.Combine(_tmp, "large.safetensors"), entries, SyntheticWeights.Filler(7));
        Assert.Equal(File.ReadAllBytes(small.Path), File.ReadAllBytes(large.Path));
        var other = SafeTensorsStreamWriter.Write(Path.Combine(_tmp, "other.safetensors"), entries, SyntheticWeights.Filler(8));
        Assert.NotEqual(File.ReadAllBytes(small.Path), File.ReadAllBytes(other.Path));

        var (t, _) = SafeTensorsFile.Read(small.Path);
        try
        {
            var w = t["enc.layer.0.dense.weight"];
            var a = (float)(SyntheticWeights.Std * Math.Sqrt(3));
            Assert.True(w.abs().max().item<float>() <= a);
            Assert.InRange(w.mean().item<float>(), -0.002f, 0.002f);
            Assert.InRange(w.std().item<float>(), 0.018f, 0.022f);
            Assert.Equal(0f, t["enc.layer.0.dense.bias"].abs().max().item<float>());
            Assert.Equal(0f, t["vision.self_attn.q_bias"].abs().max().item<float>());
            Assert.True(t["enc.layer.0.output.LayerNorm.weight"].eq(1f).all().item<bool>());
            Assert.True(t["t5.block.0.layer.0.layer_norm.weight"].eq(1f).all().item<bool>());
            // Element i is a function of (seed, name, i) alone: a fill starting at element 101 matches the file.
            var part = new float[50];
            SyntheticWeights.Fill(SyntheticWeights.Key(7, "enc.layer.0.dense.weight"), SyntheticWeights.Kind.Uniform, 101, part);
            Assert.Equal(w.flatten().narrow(0, 101, 50).data<float>().ToArray(), part);
        }
        finally { foreach (var v in t.Values) v.Dispose(); }
    }

    [Fact]
    public void Bf16_synthetic_values_are_the_f32_ones_truncated()
    {
        var f32 = SafeTensorsStreamWriter.Write(Path.Combine(_tmp, "f32.safetensors"), [new SafeTensorEntry("w", "F32", [64])], SyntheticWeights.Filler(1));
        var bf16 = SafeTensorsStreamWriter.Write(Path.Combine(_tmp, "bf16.safetensors"), [new SafeTensorEntry("w", "BF16", [64])], SyntheticWeights.Filler(1), bufferBytes: 64);
        var a = MemoryMarshal.Cast<byte, uint>(File.ReadAllBytes(f32.Path).AsSpan()[^256..]).ToArray();
        var b = MemoryMarshal.Cast<byte, ushort>(File.ReadAllBytes(bf16.Path).AsSpan()[^128..]).ToArray();
        Assert.Equal(a.Select(x => (ushort)(x >> 16)), b);
    }
}
