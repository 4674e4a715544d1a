namespace Scst.Actors.Pipeline;

/// <summary>
/// Which run a shared rollout actor serves next: of the runs with a request it can serve now, the one furthest below
/// its share (requests served ÷ weight, <c>scst.rollout.run-weights</c>, 1 unless set); ties go to the one served
/// longest ago. With equal weights and every run waiting, that is round-robin; a run with weight 2 gets two requests
/// for each of a weight-1 run's.
/// </summary>
public static class FairShare
{
    public readonly record struct Candidate(string RunId, long Served, long LastServed);

    public static int Next(IReadOnlyList<Candidate> ready, IReadOnlyDictionary<string, double>? weights)
    {
        var best = -1;
        for (var i = 0; i < ready.Count; i++)
        {
            if (best < 0) { best = i; continue; }
            var (a, b) = (Share(ready[i], weights), Share(ready[best], weights));
            if (a < b || (a == b && ready[i].LastServed < ready[best].LastServed)) best = i;
        }
        return best;
    }

    static double Share(Candidate c, IReadOnlyDictionary<string, double>? weights) =>
        c.Served / (weights is not null && weights.TryGetValue(c.RunId, out var w) ? w : 1.0);
}
