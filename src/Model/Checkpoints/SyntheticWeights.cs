using System.Runtime.InteropServices;
using System.Text;
using Scst.Model.SafeTensors;

namespace Scst.Model.Checkpoints;

/// <summary>
/// Deterministic random weights for stand-in checkpoints, generated without TorchSharp: each element is a pure
/// function of (seed, tensor name, element index) — a counter-based SplitMix64 — so any chunk can be produced on
/// its own, in any order, at several GB/s. Values follow HF's init in spirit: biases 0, norm weights 1, everything
/// else uniform with standard deviation 0.02.
/// </summary>
public static class SyntheticWeights
{
    public const double Std = 0.02;
    private const ulong Gamma = 0x9E3779B97F4A7C15UL;
    private static readonly float HalfWidth = (float)(Std * Math.Sqrt(3.0)); // U(-a, a) has std a/√3
    private const float Inv24 = 1f / (1 << 24);

    public enum Kind { Zeros, Ones, Uniform }

    /// <summary>Biases (<c>.bias</c>, <c>_bias</c>) are 0, LayerNorm/RMSNorm weights 1, the rest uniform.</summary>
    public static Kind KindOf(string name)
    {
        if (name.EndsWith(".bias", StringComparison.Ordinal) || name.EndsWith("_bias", StringComparison.Ordinal)) return Kind.Zeros;
        if (name.EndsWith(".weight", StringComparison.Ordinal)
            && (name.Contains("layer_norm", StringComparison.Ordinal) || name.Contains("layernorm", StringComparison.Ordinal)
                || name.Contains("LayerNorm", StringComparison.Ordinal)))
            return Kind.Ones;
        return Kind.Uniform;
    }

    /// <summary>The stream key of a tensor: SplitMix64 of the seed mixed with the FNV-1a hash of the name.</summary>
    public static ulong Key(int seed, string name)
    {
        var h = 0xCBF29CE484222325UL;
        foreach (var b in Encoding.UTF8.GetBytes(name)) { h ^= b; h *= 0x100000001B3UL; }
        return Mix(h ^ Mix((ulong)(uint)seed * Gamma + Gamma));
    }

    /// <summary>Element values <paramref name="firstElement"/>.. of a tensor into <paramref name="destination"/>.</summary>
    public static void Fill(ulong key, Kind kind, long firstElement, Span<float> destination)
    {
        switch (kind)
        {
            case Kind.Zeros: destination.Clear(); return;
            case Kind.Ones: destination.Fill(1f); return;
        }
        // Element e takes 24 bits of Mix(key + (e/2 + 1)·γ): the high bits for even e, the middle bits for odd e.
        var a = HalfWidth;
        var i = 0;
        var e = firstElement;
        if ((e & 1) != 0 && destination.Length > 0)
        {
            destination[0] = ToValue((Mix(key + (ulong)((e >> 1) + 1) * Gamma) >> 16) & 0xFFFFFF, a);
            i = 1; e++;
        }
        var counter = key + (ulong)((e >> 1) + 1) * Gamma;
        for (; i + 1 < destination.Length; i += 2, counter += Gamma)
        {
            var r = Mix(counter);
            destination[i] = ToValue(r >> 40, a);
            destination[i + 1] = ToValue((r >> 16) & 0xFFFFFF, a);
        }
        if (i < destination.Length) destination[i] = ToValue(Mix(counter) >> 40, a);
    }

    /// <summary>A <see cref="SafeTensorFill"/> for F32 (and BF16, rounded toward zero) tensors.</summary>
    public static SafeTensorFill Filler(int seed)
    {
        SafeTensorEntry? last = null;
        ulong key = 0;
        var kind = Kind.Uniform;
        float[]? scratch = null;
        return (entry, byteOffset, destination) =>
        {
            if (!ReferenceEquals(entry, last)) { last = entry; key = Key(seed, entry.Name); kind = KindOf(entry.Name); }
            switch (entry.DType)
            {
                case "F32":
                    Fill(key, kind, byteOffset / 4, MemoryMarshal.Cast<byte, float>(destination));
                    break;
                case "BF16":
                {
                    var n = destination.Length / 2;
                    if (scratch is null || scratch.Length < n) scratch = new float[n];
                    var f = scratch.AsSpan(0, n);
                    Fill(key, kind, byteOffset / 2, f);
                    var dst = MemoryMarshal.Cast<byte, ushort>(destination);
                    for (var j = 0; j < n; j++) dst[j] = (ushort)(BitConverter.SingleToUInt32Bits(f[j]) >> 16);
                    break;
                }
                default:
                    throw new NotSupportedException($"synthetic weights are F32 or BF16; tensor '{entry.Name}' is {entry.DType}.");
            }
        };
    }

    private static float ToValue(ulong bits24, float a) => ((int)bits24 * Inv24 * 2f - 1f) * a;

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
