using Scst.Actors.Pipeline;

namespace Scst.Actors.Tests;

/// <summary>How sync mode sizes the parts of a micro-batch from the rollout workers' measured throughput.</summary>
public class RolloutSharesTests
{
    [Theory]
    [InlineData(12, new[] { 1.0, 2.0, 3.0 }, new[] { 2, 4, 6 })]
    [InlineData(10, new[] { 1.0, 1.0, 1.0 }, new[] { 4, 3, 3 })]       // remainder to the earliest on ties
    [InlineData(10, new[] { 3.0, 1.0 }, new[] { 8, 2 })]               // 7.5 / 2.5: largest remainder, earlier first
    [InlineData(25, new[] { 10.0, 20.0 }, new[] { 8, 17 })]
    public void Shares_are_proportional_to_throughput(int images, double[] rates, int[] expected) =>
        Assert.Equal(expected, RolloutShares.Sizes(images, [.. rates.Select(r => (double?)r)]));

    [Fact]
    public void Every_worker_gets_at_least_one_image_when_there_are_enough()
    {
        // Ideal shares 0.03 / 0.03 / 4.94: the slow ones are raised to 1, taken from the fast one.
        Assert.Equal([1, 1, 3], RolloutShares.Sizes(5, [1.0, 1.0, 160.0]));
        Assert.Equal([1, 1, 1], RolloutShares.Sizes(3, [0.001, 1000.0, 1.0]));
    }

    [Fact]
    public void Fewer_images_than_workers_go_one_each_to_the_fastest()
    {
        Assert.Equal([0, 1, 1, 0], RolloutShares.Sizes(2, [1.0, 5.0, 3.0, 2.0]));
        Assert.Equal([1, 0, 0], RolloutShares.Sizes(1, [2.0, 2.0, 2.0]));
        Assert.Equal(["1:7", "2:8"], RolloutShares.Cut([7, 8], [1.0, 5.0, 3.0, 2.0]).Select(p => $"{p.Worker}:{string.Join(",", p.Ids)}"));
    }

    [Fact]
    public void Unmeasured_workers_count_as_the_mean_of_the_measured_or_all_equal()
    {
        Assert.Equal([3, 3, 3], RolloutShares.Sizes(9, [null, null, null]));
        // Measured 2 and 4 images/s: the newcomer counts as 3.
        Assert.Equal([2, 4, 3], RolloutShares.Sizes(9, [2.0, 4.0, null]));
        Assert.Equal([2, 4, 3], RolloutShares.Sizes(9, [2.0, 4.0, double.NaN]));
    }

    [Fact]
    public void Parts_are_contiguous_and_cover_the_micro_batch_in_order()
    {
        var rng = new Random(5);
        for (var trial = 0; trial < 200; trial++)
        {
            var ids = Enumerable.Range(100, rng.Next(1, 40)).ToArray();
            var rates = Enumerable.Range(0, rng.Next(1, 6)).Select(_ => rng.Next(4) == 0 ? (double?)null : rng.NextDouble() * 50).ToArray();
            var parts = RolloutShares.Cut(ids, rates);
            Assert.Equal(ids, parts.SelectMany(p => p.Ids));
            Assert.Equal(Math.Min(ids.Length, rates.Length), parts.Count);
            Assert.All(parts, p => Assert.NotEmpty(p.Ids));
            Assert.Equal(parts.Select(p => p.Worker).Order(), parts.Select(p => p.Worker));
            Assert.Equal(parts.Count, parts.Select(p => p.Worker).Distinct().Count());
        }
    }
}
