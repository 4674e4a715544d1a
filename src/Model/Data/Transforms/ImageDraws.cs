namespace Scst.Model.Data.Transforms;

/// <summary>
/// The random numbers one image's training transform draws, a pure function of (run seed, epoch, key) — the key is
/// the image's (or sample's) index — so a resumed run, or a batch decoded on another thread or node, reproduces the
/// same pixels. SplitMix64 over a hash of the three; no global RNG.
/// </summary>
public sealed class ImageDraws(long seed, int epoch, long key)
{
    private ulong _state = Mix(Mix((ulong)seed ^ 0x5DEECE66DUL) ^ (ulong)(uint)epoch * 0x9E3779B97F4A7C15UL ^ Mix((ulong)key + 0xD1B54A32D192ED03UL));

    public long Seed { get; } = seed;
    public int Epoch { get; } = epoch;
    public long Key { get; } = key;

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private ulong Next()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [a, b).</summary>
    public double Uniform(double a, double b) => a + (b - a) * NextDouble();

    /// <summary>Uniform integer in [0, n) (n ≥ 1), as <c>torch.randint(0, n)</c>.</summary>
    public int NextInt(int n) => n <= 1 ? 0 : (int)((Next() >> 1) % (ulong)n);
}
