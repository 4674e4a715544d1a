using Scst.Actors.Pipeline;

namespace Scst.Actors.Tests;

public class FairShareTests
{
    /// <summary>Serves <paramref name="n"/> requests from always-waiting runs and counts each run's.</summary>
    static Dictionary<string, int> Serve(string[] runs, int n, IReadOnlyDictionary<string, double>? weights)
    {
        var served = runs.ToDictionary(r => r, _ => 0L);
        var last = runs.ToDictionary(r => r, _ => 0L);
        for (var clock = 1; clock <= n; clock++)
        {
            var ready = runs.Select(r => new FairShare.Candidate(r, served[r], last[r])).ToList();
            var pick = ready[FairShare.Next(ready, weights)].RunId;
            served[pick]++;
            last[pick] = clock;
        }
        return served.ToDictionary(p => p.Key, p => (int)p.Value);
    }

    [Fact]
    public void Equal_weights_take_turns()
    {
        var order = new List<string>();
        var served = new Dictionary<string, long> { ["a"] = 0, ["b"] = 0, ["c"] = 0 };
        var last = new Dictionary<string, long> { ["a"] = 0, ["b"] = 0, ["c"] = 0 };
        for (var clock = 1; clock <= 6; clock++)
        {
            var ready = served.Keys.Select(r => new FairShare.Candidate(r, served[r], last[r])).ToList();
            var pick = ready[FairShare.Next(ready, null)].RunId;
            order.Add(pick);
            served[pick]++;
            last[pick] = clock;
        }
        Assert.Equal(["a", "b", "c", "a", "b", "c"], order);
    }

    [Fact]
    public void A_run_with_weight_two_gets_twice_the_requests()
    {
        var served = Serve(["sync-run", "async-run"], 300, new Dictionary<string, double> { ["sync-run"] = 2 });
        Assert.Equal(200, served["sync-run"]);
        Assert.Equal(100, served["async-run"]);
    }

    [Fact]
    public void A_run_that_was_not_waiting_catches_up_first_and_nothing_ready_picks_none()
    {
        // "b" joined late: it is served until its share reaches "a"'s.
        var ready = new List<FairShare.Candidate> { new("a", 10, 10), new("b", 2, 3) };
        Assert.Equal(1, FairShare.Next(ready, null));
        Assert.Equal(-1, FairShare.Next([], null));
    }
}
