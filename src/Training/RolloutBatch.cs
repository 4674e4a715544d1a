namespace Scst.Training;

/// <summary>Captions sampled for a batch of images: K rows per image, image-major.</summary>
public sealed record RolloutBatch(
    int[] ImageIndices,
    int K,
    long[][] Sequences,
    string[] Captions,
    float[] BehaviourLogProbs,
    int[] Lengths,
    long PolicyVersion)
{
    /// <summary>
    /// Rollouts of consecutive parts of one micro-batch as one batch. Rows are padded to the longest part with
    /// <paramref name="padId"/>: a part shorter than another stopped because every row had ended (EOS), and the
    /// token mask stops at the first EOS, so padding never becomes a scored token.
    /// </summary>
    public static RolloutBatch Concat(IReadOnlyList<RolloutBatch> parts, long padId)
    {
        if (parts.Count == 1) return parts[0];
        var k = parts[0].K;
        if (parts.Any(p => p.K != k || p.PolicyVersion != parts[0].PolicyVersion))
            throw new ArgumentException("rollout parts differ in K or policy version");
        var len = parts.Max(p => p.Sequences.Length == 0 ? 0 : p.Sequences[0].Length);
        var sequences = parts.SelectMany(p => p.Sequences).Select(row =>
        {
            if (row.Length == len) return row;
            var padded = new long[len];
            row.CopyTo(padded, 0);
            Array.Fill(padded, padId, row.Length, len - row.Length);
            return padded;
        }).ToArray();
        return new RolloutBatch([.. parts.SelectMany(p => p.ImageIndices)], k, sequences, [.. parts.SelectMany(p => p.Captions)],
            [.. parts.SelectMany(p => p.BehaviourLogProbs)], [.. parts.SelectMany(p => p.Lengths)], parts[0].PolicyVersion);
    }
}
