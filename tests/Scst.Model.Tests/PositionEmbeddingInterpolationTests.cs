using Scst.Model.Blip2;
using Scst.Model.SafeTensors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>LAVIS interpolate_pos_embed against PyTorch's bicubic (tests/data/interp/make_pos_embed_interp.py).</summary>
public class PositionEmbeddingInterpolationTests
{
    private const double Tol = 1e-5;
    private readonly ITestOutputHelper _out;
    public PositionEmbeddingInterpolationTests(ITestOutputHelper output) { TorchRuntime.Initialize(); _out = output; }

    private static Dictionary<string, Tensor> Oracle() =>
        SafeTensorsFile.Read(Path.Combine(AppContext.BaseDirectory, "data", "interp", "pos_embed_interp.safetensors")).Tensors;

    [Theory]
    [InlineData("small", 6)]
    [InlineData("small", 3)]
    [InlineData("blip", 26)]
    public void MatchesPyTorchAndKeepsClassToken(string input, int grid)
    {
        using var scope = NewDisposeScope();
        var t = Oracle();
        var x = t[input];
        var y = PositionEmbeddingInterpolation.Interpolate(x, grid);
        var diff = Fixture.MaxDiff(y, t[$"{input}_to_{grid}"]);
        _out.WriteLine($"{input} -> {grid}: max abs diff {diff:E3}");
        Assert.True(diff <= Tol, $"max abs diff {diff}");
        Assert.True(y.narrow(1, 0, 1).Equals(x.narrow(1, 0, 1)));
    }

    [Fact]
    public void SameGridIsAnIdentityCopy()
    {
        using var scope = NewDisposeScope();
        var x = Oracle()["small"];
        var y = PositionEmbeddingInterpolation.Interpolate(x, 4);
        Assert.True(y.Equals(x));
        y.add_(1);
        Assert.False(y.Equals(x));
    }

    [Fact]
    public void Bf16ComesBackBf16()
    {
        using var scope = NewDisposeScope();
        var t = Oracle();
        var y = PositionEmbeddingInterpolation.Interpolate(t["blip"].to(ScalarType.BFloat16), 26);
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        var diff = Fixture.MaxDiff(y, t["blip_to_26"]);
        _out.WriteLine($"bf16 blip -> 26: max abs diff {diff:E3}");
        Assert.True(diff <= 0.05, $"max abs diff {diff}");
    }

    [Fact]
    public void LengthNotOnePlusSquareIsRejected()
    {
        var e = Assert.Throws<InvalidDataException>(() => PositionEmbeddingInterpolation.Interpolate(zeros(1, 18, 4), 6));
        Assert.Contains("18 positions", e.Message);
        Assert.Equal(16, PositionEmbeddingInterpolation.Grid(257));
        Assert.Throws<InvalidDataException>(() => PositionEmbeddingInterpolation.Grid(256));
    }
}
