using Scst.Model.Checkpoints;
using Scst.Model.Generation;
using Scst.Model.T5;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Scst.Model.Tests;

/// <summary>
/// The vectorised, cached beam search against a plain per-hypothesis transcription of transformers 5.x's
/// <c>_beam_search</c> (full decoder pass per step, processors applied by hand in C# to the log-softmax), with
/// repetition penalty, length penalty and min_length; and the HF fixture outputs with every new option at its default.
/// </summary>
public class BeamSearchOracleTests
{
    private const double Tol = 1e-4;
    public BeamSearchOracleTests() => TorchRuntime.Initialize();

    private sealed record Hyp(long[] Seq, float Score, float[] TokLp);

    /// <summary>HF 5.x beam search for one input, written per hypothesis from the algorithm's description.</summary>
    private static List<Hyp> Oracle(T5ForConditionalGeneration m, Tensor enc1, Tensor mask1, GenerationOptions o)
    {
        var c = m.Config;
        int k = o.NumBeams, maxNew = o.MaxNewTokens;
        var running = Enumerable.Range(0, k).Select(i => new Hyp([c.DecoderStartTokenId], i == 0 ? 0f : -1e9f, [])).ToList();
        var finished = new List<Hyp>();
        var unsatisfied = true;
        for (var step = 0; step < maxNew; step++)
        {
            var curLen = step + 1;
            using var scope = NewDisposeScope();
            var input = tensor(running.SelectMany(h => h.Seq).ToArray()).reshape(k, curLen);
            var logits = m.Decode(enc1.expand(k, -1, -1), mask1.expand(k, -1), input).select(1, curLen - 1).to(ScalarType.Float32);
            var logp = F.log_softmax(logits, 1);
            var cands = new List<(int Beam, long Tok, float Score, float Lp)>();
            for (var i = 0; i < k; i++)
            {
                var row = logp[i].data<float>().ToArray();
                if (o.RepetitionPenalty != 1.0)
                    foreach (var id in running[i].Seq.Distinct())
                        row[id] = row[id] < 0 ? (float)(row[id] * o.RepetitionPenalty) : (float)(row[id] / o.RepetitionPenalty);
                if (curLen < o.MinLength) row[c.EosTokenId] = float.NegativeInfinity;
                for (var v = 0; v < row.Length; v++) cands.Add((i, v, running[i].Score + row[v], row[v]));
            }
            var top = cands.OrderByDescending(x => x.Score).Take(2 * k).ToList();
            var last = step == maxNew - 1;
            Hyp Extend((int Beam, long Tok, float Score, float Lp) x, float score) =>
                new([.. running[x.Beam].Seq, x.Tok], score, [.. running[x.Beam].TokLp, x.Lp]);

            // Only the top k candidates may finish, scored sum / generated_tokens^length_penalty.
            var full = o.EarlyStopping == EarlyStopping.True && finished.Count == k;
            for (var j = 0; j < k; j++)
                if ((last || top[j].Tok == c.EosTokenId) && unsatisfied && !full)
                    finished.Add(Extend(top[j], (float)(top[j].Score / Math.Pow(curLen, o.LengthPenalty))));
            finished = [.. finished.OrderByDescending(h => h.Score).Take(k)];
            running = [.. top.Where(x => !(last || x.Tok == c.EosTokenId)).Take(k).Select(x => Extend(x, x.Score))];
            if (last) break;

            var hypothetical = o.EarlyStopping == EarlyStopping.Never && o.LengthPenalty > 0 ? maxNew : curLen;
            var best = running[0].Score / Math.Pow(hypothetical, o.LengthPenalty);
            unsatisfied &= finished.Count < k || best > finished.Min(h => h.Score);
            if (!unsatisfied || (o.EarlyStopping == EarlyStopping.True && finished.Count == k)) break;
        }
        return finished;
    }

    private static void AssertMatchesOracle(T5ForConditionalGeneration m, Tensor enc, Tensor mask, GenerationOptions o)
    {
        using var g = Seq2SeqGeneration.Generate(m, enc, mask, o);
        long r = o.NumReturnSequences, l = g.Sequences.shape[1];
        for (long b = 0; b < enc.shape[0]; b++)
        {
            var expected = Oracle(m, enc.narrow(0, b, 1), mask.narrow(0, b, 1), o);
            for (var j = 0; j < r; j++)
            {
                var row = b * r + j;
                var h = expected[j];
                var seq = g.Sequences[row].data<long>().ToArray();
                Assert.Equal(h.Seq, seq.Take(h.Seq.Length).ToArray());
                Assert.All(seq.Skip(h.Seq.Length), t => Assert.Equal(m.Config.EosTokenId, t));
                Assert.True(Math.Abs(g.SequenceScores[row].item<float>() - h.Score) <= Tol, $"row {row}: score {g.SequenceScores[row].item<float>()} vs {h.Score}");
                var lp = g.TokenLogProbs[row].data<float>().ToArray();
                for (var t = 0; t < l - 1; t++)
                    Assert.True(Math.Abs(lp[t] - (t < h.TokLp.Length ? h.TokLp[t] : 0f)) <= Tol, $"row {row} token {t}");
                Assert.Equal(h.Seq.Length - 1, g.TokenMask[row].sum().item<long>());
            }
        }
    }

    private static (T5ForConditionalGeneration, Tensor, Tensor) Model(string name)
    {
        var r = Fixture.Reference(name);
        var m = HfCheckpoint.LoadT5(Fixture.Dir(name));
        var ids = Fixture.Longs(r["input_ids"]!); var am = Fixture.Longs(r["attention_mask"]!);
        using var _ = no_grad();
        return (m, m.Encode(ids, null, am), am);
    }

    public static TheoryData<double, double, int, EarlyStopping> Settings => new()
    {
        { 1.0, 1.0, 0, EarlyStopping.False },   // the HF defaults: the oracle must agree with the fixture too
        { 1.0, 1.8, 0, EarlyStopping.False },
        { 2.5, 1.0, 0, EarlyStopping.False },
        { -1.0, 1.0, 0, EarlyStopping.False },
        { 0.0, 1.3, 5, EarlyStopping.False },
        { 1.0, 1.0, 6, EarlyStopping.False },
        { 0.6, 0.7, 4, EarlyStopping.Never },
        { 1.5, 1.2, 3, EarlyStopping.True },
    };

    [Theory, MemberData(nameof(Settings))]
    public void BeamSearchEqualsThePerHypothesisTranscription(double lengthPenalty, double repetitionPenalty, int minLength, EarlyStopping early)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var name in new[] { "t5_v11_untied", "t5_relu_tied" })
        {
            var (m, enc, am) = Model(name);
            AssertMatchesOracle(m, enc, am, new GenerationOptions
            {
                NumBeams = 4, NumReturnSequences = 3, MaxNewTokens = 8, LengthPenalty = lengthPenalty,
                RepetitionPenalty = repetitionPenalty, MinLength = minLength, EarlyStopping = early, CheckFinishedEvery = 1,
            });
            m.Dispose();
        }
    }

    [Fact]
    public void ExplicitDefaultsReproduceTheHfFixtureExactly()
    {
        using var scope = NewDisposeScope();
        foreach (var name in new[] { "t5_v11_untied", "t5_v11_gated", "t5_relu_tied" })
        {
            var r = Fixture.Reference(name)["from_ids"]!.AsObject();
            var (m, enc, am) = Model(name);
            var o = new GenerationOptions { MaxNewTokens = 8, RepetitionPenalty = 1.0, LengthPenalty = 1.0, MinLength = 1 };
            using var beam = Seq2SeqGeneration.Generate(m, enc, am, o with { NumBeams = 3, NumReturnSequences = 3 });
            Assert.Equal(Fixture.Longs(r["beam_sequences"]!).data<long>().ToArray(), beam.Sequences.data<long>().ToArray());
            Assert.True(Fixture.MaxDiff(beam.SequenceScores, Fixture.Floats(r["beam_sequences_scores"]!)) <= Tol);
            Assert.True(Fixture.MaxDiff(beam.TokenLogProbs, Fixture.Floats(r["beam_transition_scores"]!)) <= Tol);
            using var greedy = Seq2SeqGeneration.Generate(m, enc, am, o);
            Assert.Equal(Fixture.Longs(r["greedy_sequences"]!).data<long>().ToArray(), greedy.Sequences.data<long>().ToArray());
            Assert.True(Fixture.MaxDiff(greedy.TokenLogProbs, Fixture.Floats(r["greedy_transition_logprobs"]!)) <= Tol);
            m.Dispose();
        }
    }

    [Fact]
    public void SequenceScoresAreTheSumOfTransitionScoresOverLengthToThePenaltyAndThePenaltyCanChangeTheBestBeam()
    {
        using var scope = NewDisposeScope();
        var (m, enc, am) = Model("t5_v11_untied");
        var best = new Dictionary<double, (long Len, double Sum)[]>();
        foreach (var lp in new[] { -2.0, 0.0, 1.0, 3.0 })
        {
            using var g = Seq2SeqGeneration.Generate(m, enc, am, new GenerationOptions { NumBeams = 4, NumReturnSequences = 4, MaxNewTokens = 8, LengthPenalty = lp });
            var len = g.TokenMask.sum(1).data<long>().ToArray();
            var sum = g.TokenLogProbs.sum(1).to(ScalarType.Float64).data<double>().ToArray();
            var score = g.SequenceScores.to(ScalarType.Float64).data<double>().ToArray();
            for (var i = 0; i < len.Length; i++)
                Assert.True(Math.Abs(score[i] - sum[i] / Math.Pow(len[i], lp)) <= Tol, $"lp {lp} row {i}");
            for (var b = 0; b < 2; b++)
                for (var j = 1; j < 4; j++) Assert.True(score[b * 4 + j - 1] >= score[b * 4 + j], "best first");
            best[lp] = [(len[0], sum[0]), (len[4], sum[4])];
        }
        // A penalty favouring length (3) never returns a shorter best beam than one favouring brevity (-2), and for
        // some input the two pick different beams: the long one has the lower raw log-prob sum.
        for (var b = 0; b < 2; b++) Assert.True(best[3.0][b].Len >= best[-2.0][b].Len);
        Assert.Contains(Enumerable.Range(0, 2), b => best[3.0][b].Len > best[-2.0][b].Len && best[3.0][b].Sum < best[-2.0][b].Sum);
        m.Dispose();
    }

    [Fact]
    public void MinLengthEqualsMinNewTokensPlusOneAndDelaysEos()
    {
        using var scope = NewDisposeScope();
        var (m, enc, am) = Model("t5_v11_untied");
        foreach (var beams in new[] { 1, 3 })
        {
            using var plain = Seq2SeqGeneration.Generate(m, enc, am, new GenerationOptions { NumBeams = beams, NumReturnSequences = beams, MaxNewTokens = 10 });
            var natural = plain.TokenMask.sum(1).min().item<long>();
            var minLength = (int)Math.Min(natural + 3, 10); // longer than what the model says unprompted
            using var a = Seq2SeqGeneration.Generate(m, enc, am, new GenerationOptions { NumBeams = beams, NumReturnSequences = beams, MaxNewTokens = 10, MinLength = minLength });
            using var b = Seq2SeqGeneration.Generate(m, enc, am, new GenerationOptions { NumBeams = beams, NumReturnSequences = beams, MaxNewTokens = 10, MinNewTokens = minLength - 1 });
            Assert.Equal(b.Sequences.data<long>().ToArray(), a.Sequences.data<long>().ToArray());
            // Generated tokens incl. EOS ≥ min_length: start + (L − 1) tokens reach length L before EOS is allowed.
            Assert.True(a.TokenMask.sum(1).min().item<long>() >= minLength);
            Assert.False(a.Sequences.narrow(1, 1, minLength - 1).eq(m.Config.EosTokenId).any().item<bool>());
        }
        m.Dispose();
    }
}
