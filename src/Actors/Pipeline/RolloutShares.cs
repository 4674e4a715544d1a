namespace Scst.Actors.Pipeline;

/// <summary>
/// How sync mode cuts a micro-batch over the rollout workers present: one contiguous part per worker, sized by each
/// worker's measured throughput, so that all parts of an update come back at about the same time. Pure; the scheduler
/// feeds it the throughputs it measured.
/// </summary>
public static class RolloutShares
{
    /// <summary>
    /// Images of a micro-batch of <paramref name="images"/> for each worker, aligned with
    /// <paramref name="throughput"/> (images/s; null, NaN or ≤ 0: not measured yet). Proportional to throughput
    /// (largest remainder), every worker at least 1 image when there are at least as many images as workers; with fewer
    /// images, the fastest workers (earlier on ties) get 1 each and the rest 0. Unmeasured workers count as the mean of
    /// the measured ones, all equal when none is measured. The sizes sum to <paramref name="images"/>.
    /// </summary>
    public static int[] Sizes(int images, IReadOnlyList<double?> throughput)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(images);
        var n = throughput.Count;
        if (n == 0) throw new ArgumentException("no worker to share among", nameof(throughput));
        var rates = Rates(throughput);
        var sizes = new int[n];
        if (images < n)
        {
            foreach (var i in Enumerable.Range(0, n).OrderByDescending(i => rates[i]).ThenBy(i => i).Take(images)) sizes[i] = 1;
            return sizes;
        }
        var total = rates.Sum();
        var ideal = rates.Select(r => images * r / total).ToArray();
        for (var i = 0; i < n; i++) sizes[i] = Math.Max(1, (int)Math.Floor(ideal[i]));
        // Raising a slow worker to 1 image can overshoot: take the surplus from those furthest above their ideal.
        while (sizes.Sum() > images)
        {
            var i = Enumerable.Range(0, n).Where(j => sizes[j] > 1).MaxBy(j => sizes[j] - ideal[j]);
            sizes[i]--;
        }
        while (sizes.Sum() < images)
        {
            var i = Enumerable.Range(0, n).MaxBy(j => ideal[j] - sizes[j]);
            sizes[i]++;
        }
        return sizes;
    }

    /// <summary>
    /// The micro-batch <paramref name="ids"/> cut into contiguous parts in order, one per worker with a non-zero size
    /// (<see cref="Sizes"/>), each with the index of its worker in <paramref name="throughput"/>.
    /// </summary>
    public static List<(int Worker, int[] Ids)> Cut(int[] ids, IReadOnlyList<double?> throughput)
    {
        var sizes = Sizes(ids.Length, throughput);
        var parts = new List<(int, int[])>();
        var at = 0;
        for (var w = 0; w < sizes.Length; w++)
        {
            if (sizes[w] == 0) continue;
            parts.Add((w, ids[at..(at + sizes[w])]));
            at += sizes[w];
        }
        return parts;
    }

    static double[] Rates(IReadOnlyList<double?> throughput)
    {
        static bool Measured(double? t) => t is double v && double.IsFinite(v) && v > 0;
        var measured = throughput.Where(Measured).Select(t => t!.Value).ToList();
        var fallback = measured.Count == 0 ? 1.0 : measured.Average();
        return [.. throughput.Select(t => Measured(t) ? t!.Value : fallback)];
    }
}
