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

    public static int[] Shuffled(int shard, int shardCount, int datasetSize, long seed, long epoch) =>
        Training.DataCursor.Shuffle(Members(shard, shardCount, datasetSize),
            (ulong)seed ^ 0x9E3779B97F4A7C15UL * (ulong)(epoch + 1) ^ 0xD1B54A32D192ED03UL * (ulong)(shard + 1));
}
