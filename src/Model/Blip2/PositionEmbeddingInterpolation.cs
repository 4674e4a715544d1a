using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Scst.Model.Blip2;

/// <summary>
/// LAVIS <c>interpolate_pos_embed</c>: BLIP-2 checkpoints are trained at 224 px (16×16 patches) but captioning is
/// fine-tuned at 364 px (26×26), so the learned patch-grid position embedding is resized bicubically; the class token
/// has no grid position and is kept as is.
/// </summary>
public static class PositionEmbeddingInterpolation
{
    /// <summary>The grid side g of a [1, 1 + g*g, D] position embedding.</summary>
    public static int Grid(long positions)
    {
        var g = (long)Math.Round(Math.Sqrt(Math.Max(positions - 1, 0)));
        if (positions < 2 || g * g != positions - 1)
            throw new InvalidDataException($"position embedding has {positions} positions, expected 1 (class token) + g*g patches");
        return (int)g;
    }

    /// <summary>[1, 1 + g*g, D] → [1, 1 + newGrid*newGrid, D], same dtype and device as the input.</summary>
    public static Tensor Interpolate(Tensor positionEmbedding, int newGrid)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(newGrid);
        if (positionEmbedding.dim() != 3 || positionEmbedding.shape[0] != 1)
            throw new InvalidDataException($"position embedding has shape [{string.Join(", ", positionEmbedding.shape)}], expected [1, 1 + g*g, D]");
        var g = Grid(positionEmbedding.shape[1]);
        if (newGrid == g) return positionEmbedding.clone();
        using var scope = NewDisposeScope();
        var d = positionEmbedding.shape[2];
        // float32 as LAVIS does (.float()): a bf16 checkpoint is resized at full precision and rounded once, at the end.
        var x = positionEmbedding.to(ScalarType.Float32);
        var grid = x.narrow(1, 1, g * g).reshape(1, g, g, d).permute(0, 3, 1, 2);
        var resized = F.interpolate(grid, [newGrid, newGrid], mode: InterpolationMode.Bicubic, align_corners: false);
        var tokens = resized.permute(0, 2, 3, 1).reshape(1, (long)newGrid * newGrid, d);
        return cat([x.narrow(1, 0, 1), tokens], 1).to(positionEmbedding.dtype).MoveToOuterDisposeScope();
    }
}
