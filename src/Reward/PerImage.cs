namespace Scst.Reward;

/// <summary>The per-image half of a corpus metric (BLEU's statistics, ROUGE-L's score): one value per candidate and its reference set.</summary>
internal static class PerImage
{
    /// <summary><paramref name="image"/> of each (candidate, references) pair in input order, on up to <paramref name="degreeOfParallelism"/> threads.</summary>
    public static T[] Map<T>(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references, int degreeOfParallelism,
        Func<int[], IReadOnlyList<int[]>, T> image)
    {
        if (candidates.Count != references.Count)
            throw new ArgumentException($"{candidates.Count} candidates but {references.Count} reference sets");
        var values = new T[candidates.Count];
        Parallel.For(0, candidates.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, degreeOfParallelism) },
            i => values[i] = image(candidates[i], references[i]));
        return values;
    }
}
