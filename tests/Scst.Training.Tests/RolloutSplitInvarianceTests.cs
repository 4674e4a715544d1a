using Microsoft.Extensions.Logging.Abstractions;
using Scst.Training;
using Xunit.Abstractions;

namespace Scst.Training.Tests;

/// <summary>
/// A micro-batch's rollouts do not depend on how it is cut among rollout workers: generated whole, in 2 or 3 parts
/// (generated in a shuffled order) or in interleaved parts, every image gets the same captions, tokens, lengths and
/// behaviour log-probs — keyed sampling and beam search alike, on CPU with the tests' one intra-op thread.
/// </summary>
public class RolloutSplitInvarianceTests(RolloutSplitInvarianceTests.CeCheckpoint ce, ITestOutputHelper output)
    : IClassFixture<RolloutSplitInvarianceTests.CeCheckpoint>
{
    /// <summary>The tiny dataset and a CE checkpoint trained on it for a few updates, so captions are not uniform noise.</summary>
    public sealed class CeCheckpoint : IDisposable
    {
        public TinyShapes Shapes { get; } = new();
        public string Best { get; }

        public CeCheckpoint()
        {
            var dir = Shapes.RunDir("ce");
            TinyShapes.Train(Shapes.Ce(iters: 30), new TrainerOptions(dir));
            Best = Path.Combine(dir, "checkpoints", "best.json");
        }

        public void Dispose() => Shapes.Dispose();
    }

    private const int K = 4;
    private static readonly int[] Images = [5, 17, 2, 40, 33, 11, 26, 8];

    /// <summary>Cuts of <see cref="Images"/> (positions), each part listed in the order it is generated.</summary>
    private static readonly Dictionary<string, int[][]> Cuts = new()
    {
        ["2 parts, last first"] = [[4, 5, 6, 7], [0, 1, 2, 3]],
        ["3 parts, shuffled"] = [[6, 7], [0, 1, 2], [3, 4, 5]],
        ["2 interleaved parts"] = [[1, 3, 5, 7], [0, 2, 4, 6]],
    };

    private sealed record Row(string Tokens, string Caption, int Length, float BehaviourLogProb);

    /// <summary>Each (image, sample) row: its tokens through EOS (start token first) — what follows is padding that depends on the call's longest row.</summary>
    private static Dictionary<(int Image, int J), Row> Rows(RolloutBatch b) =>
        Enumerable.Range(0, b.Sequences.Length).ToDictionary(
            r => (b.ImageIndices[r / b.K], r % b.K),
            r => new Row(string.Join(",", b.Sequences[r].Take(1 + b.Lengths[r])), b.Captions[r], b.Lengths[r], b.BehaviourLogProbs[r]));

    [Theory]
    [InlineData("sample")]
    [InlineData("beam")]
    public void AMicroBatchCutIntoPartsGivesTheRolloutsOfTheWhole(string sampling)
    {
        var c = ce.Shapes.Scst(ce.Best, sampling: sampling);
        c = c with { Run = c.Run with { BatchSizeTrain = Images.Length }, Scst = c.Scst with { SampleN = K, BeamSize = K } };
        using var learner = Learner.Create(c, ce.Shapes.RunDir($"split-{sampling}"), new TinyShapes.NullSink(), NullLogger.Instance);
        var rollouts = learner.Rollouts!;
        var seed = RolloutGenerator.SamplingSeed(c.Run.Seed, update: 3, micro: 1);

        var whole = rollouts.Generate(Images, 7, seed);
        Assert.Equal(Images, whole.ImageIndices);
        var expected = Rows(whole);
        // Not a trivial comparison: images get rows of their own and rows end at different steps (so joining pads).
        Assert.True(expected.Values.Distinct().Count() > K, "images get rows of their own");
        Assert.True(expected.Values.Select(r => r.Length).Distinct().Count() > 1, "rows end at different steps");
        var failures = new List<string>();
        var generated = new List<(int[][] Cut, List<RolloutBatch> Parts)>();
        foreach (var (name, cut) in Cuts)
        {
            var parts = cut.Select(p => rollouts.Generate([.. p.Select(i => Images[i])], 7, seed)).ToList();
            var got = parts.SelectMany(Rows).ToDictionary();
            Assert.Equal(expected.Keys.Order(), got.Keys.Order());
            var tokensDiffer = expected.Count(kv => kv.Value.Tokens != got[kv.Key].Tokens);
            var captionsDiffer = expected.Count(kv => kv.Value.Caption != got[kv.Key].Caption);
            var maxDelta = expected.Max(kv => Math.Abs(kv.Value.BehaviourLogProb - got[kv.Key].BehaviourLogProb));
            var line = $"{sampling}, {name}: rows with other tokens {tokensDiffer}/{expected.Count}, other captions {captionsDiffer}, max |Δ behaviour log-prob| {maxDelta:G3}";
            output.WriteLine(line);
            if (tokensDiffer + captionsDiffer > 0 || maxDelta > 0 || expected.Any(kv => kv.Value != got[kv.Key])) failures.Add(line);
            generated.Add((cut, parts));
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));

        // Contiguous parts joined in image order (as a learner joins its workers' answers) are the whole rollout.
        foreach (var (cut, parts) in generated)
        {
            var ordered = cut.Zip(parts, (positions, rollout) => (Positions: positions, Rollout: rollout)).OrderBy(p => p.Positions[0]).ToList();
            if (!ordered.SelectMany(p => p.Positions).SequenceEqual(Enumerable.Range(0, Images.Length))) continue;
            var joined = RolloutBatch.Concat([.. ordered.Select(p => p.Rollout)], learner.Policy.Tokenizer.PadId);
            Assert.Equal(Images, joined.ImageIndices);
            Assert.Equal(whole.Captions, joined.Captions);
            Assert.Equal(whole.Lengths, joined.Lengths);
            Assert.Equal(whole.BehaviourLogProbs, joined.BehaviourLogProbs);
        }
    }
}
