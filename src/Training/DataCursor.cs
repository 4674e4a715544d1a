namespace Scst.Training;

/// <summary>
/// Where training is in the data: epoch and position in that epoch's shuffled order of samples (images, or CE's
/// (image, caption) annotations). The order is a pure function of (seed, epoch, size), so a checkpoint only needs the
/// two integers, and every sample is drawn exactly once per epoch. The last batch of an epoch may be short, or with
/// <paramref name="dropLast"/> (LAVIS's training loader, <c>drop_last=True</c>) a partial last batch is skipped.
/// </summary>
public sealed class DataCursor(int size, long seed, int epoch = 0, int position = 0, bool dropLast = false)
{
    private int[] _order = EpochOrder(size, seed, epoch);

    public int Size { get; } = size;
    public long Seed { get; } = seed;
    public int Epoch { get; private set; } = epoch;
    public int Position { get; private set; } = position;
    public bool DropLast { get; } = dropLast;

    /// <summary>The next batch of sample indices; when an epoch is used up the next one starts with a fresh order.</summary>
    public int[] Next(int batchSize)
    {
        if (Position >= Size || (DropLast && Size - Position < batchSize))
        {
            Epoch++;
            Position = 0;
            _order = EpochOrder(Size, Seed, Epoch);
        }
        var n = Math.Min(batchSize, Size - Position);
        var batch = _order.AsSpan(Position, n).ToArray();
        Position += n;
        return batch;
    }

    /// <summary>This epoch's order of all images: identical on every machine and .NET version.</summary>
    public static int[] EpochOrder(int size, long seed, int epoch) =>
        Shuffle(Enumerable.Range(0, size).ToArray(), (ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)(epoch + 1) * 0xD1B54A32D192ED03UL);

    /// <summary>Fisher–Yates in place, driven by SplitMix64 from <paramref name="state"/>: the same order on every machine.</summary>
    public static int[] Shuffle(int[] items, ulong state)
    {
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = (int)(SplitMix64(ref state) % (ulong)(i + 1));
            (items[i], items[j]) = (items[j], items[i]);
        }
        return items;
    }

    private static ulong SplitMix64(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
