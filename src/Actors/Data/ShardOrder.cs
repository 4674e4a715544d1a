namespace Scst.Actors.Data;

/// <summary>
/// Which images a shard owns and in what order it serves them in an epoch. Deterministic in
/// (seed, epoch, shard) on every machine and .NET version, so a recovered shard re-creates the same order.
/// </summary>
public static class ShardOrder
{
    /// <summary>Shard s owns image ids i with i mod S == s (sizes differ by at most one).</summary>
    public static int[] Members(int shard, int shardCount, int datasetSize)
    {
        var n = datasetSize / shardCount + (shard < datasetSize % shardCount ? 1 : 0);
        var ids = new int[n];
        for (int k = 0; k < n; k++) ids[k] = shard + k * shardCount;
        return ids;
    }

    public static int[] Shuffled(int shard, int shardCount, int datasetSize, long seed, long epoch)
    {
        var ids = Members(shard, shardCount, datasetSize);
        var state = (ulong)seed ^ 0x9E3779B97F4A7C15UL * (ulong)(epoch + 1) ^ 0xD1B54A32D192ED03UL * (ulong)(shard + 1);
        for (int i = ids.Length - 1; i > 0; i--)
        {
            var j = (int)(SplitMix64(ref state) % (ulong)(i + 1));
            (ids[i], ids[j]) = (ids[j], ids[i]);
        }
        return ids;
    }

    static ulong SplitMix64(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
