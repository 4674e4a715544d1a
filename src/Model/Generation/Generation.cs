using Scst.Model.T5;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Scst.Model.Generation;

/// <summary>HF's <c>early_stopping</c>: False (heuristic stop), True (stop once K hypotheses are done), "never".</summary>
public enum EarlyStopping { False, True, Never }

/// <summary>Decoding settings with Hugging Face <c>generate</c> names and defaults.</summary>
public sealed record GenerationOptions
{
    public int NumBeams { get; init; } = 1;
    public int NumReturnSequences { get; init; } = 1;
    public int MaxNewTokens { get; init; } = 20;
    /// <summary>HF <c>min_new_tokens</c>: EOS is banned for the first this many generated tokens.</summary>
    public int MinNewTokens { get; init; }
    /// <summary>
    /// HF <c>min_length</c> (LAVIS's <c>min_len</c>): EOS is banned while the decoder sequence, its start token included,
    /// is shorter than this, i.e. for the first MinLength − 1 generated tokens. 0 and 1 ban nothing.
    /// </summary>
    public int MinLength { get; init; }
    /// <summary>HF <c>length_penalty</c>: a finished beam scores sum(log-probs) / generated_tokens^LengthPenalty (EOS counted, start token not).</summary>
    public double LengthPenalty { get; init; } = 1.0;
    /// <summary>HF <c>repetition_penalty</c> (RepetitionPenaltyLogitsProcessor); 1 is off.</summary>
    public double RepetitionPenalty { get; init; } = 1.0;
    public EarlyStopping EarlyStopping { get; init; } = EarlyStopping.False;
    /// <summary>Multinomial sampling (with <see cref="NumBeams"/> = 1); otherwise greedy or beam search.</summary>
    public bool DoSample { get; init; }
    public double Temperature { get; init; } = 1.0;
    /// <summary>0 disables top-k filtering.</summary>
    public int TopK { get; init; }
    public double TopP { get; init; } = 1.0;
    /// <summary>Seedable generator for sampling (on the model's device); null uses torch's global one. Unused with <see cref="SampleKeys"/>.</summary>
    public Generator? Generator { get; init; }
    /// <summary>
    /// Sampling keyed per returned row (row i·NumReturnSequences + j is input i's j-th sample; one key per row): each
    /// step's draw is <see cref="KeyedSampling"/>'s uniform of (key, step), so a row's caption does not depend on which
    /// other rows share the call. Null samples with <c>torch.multinomial</c> and <see cref="Generator"/>.
    /// </summary>
    public IReadOnlyList<ulong>? SampleKeys { get; init; }
    /// <summary>Host check of "all finished" every this many steps (the only device→host sync in the loop); 0 never checks.</summary>
    public int CheckFinishedEvery { get; init; } = 4;

    /// <summary>
    /// Whether EOS is banned at 0-based decoding step <paramref name="step"/>, when the decoder input holds step + 1 tokens
    /// (start token included): HF's MinNewTokensLengthLogitsProcessor and MinLengthLogitsProcessor.
    /// </summary>
    public bool SuppressesEos(long step) => step < MinNewTokens || step + 1 < MinLength;

    /// <summary>Throws on settings transformers would refuse (or that mean nothing here).</summary>
    public void Validate()
    {
        if (MaxNewTokens < 1) throw new ArgumentException("MaxNewTokens must be ≥ 1");
        if (NumReturnSequences < 1) throw new ArgumentException("NumReturnSequences must be ≥ 1");
        if (MinNewTokens < 0 || MinLength < 0) throw new ArgumentException("MinNewTokens and MinLength must be ≥ 0");
        // HF lets min_new_tokens silently override min_length; two lower bounds in one call is a caller's mistake here.
        if (MinNewTokens > 0 && MinLength > 0) throw new ArgumentException("set MinLength (HF min_length) or MinNewTokens, not both");
        if (!(RepetitionPenalty > 0) || double.IsInfinity(RepetitionPenalty)) throw new ArgumentException($"RepetitionPenalty must be a finite number > 0, got {RepetitionPenalty}");
        if (!double.IsFinite(LengthPenalty)) throw new ArgumentException($"LengthPenalty must be finite, got {LengthPenalty}");
        if (DoSample)
        {
            if (!(Temperature > 0) || double.IsInfinity(Temperature)) throw new ArgumentException($"Temperature must be a finite number > 0, got {Temperature}");
            if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"TopP must be in (0, 1], got {TopP}");
            if (TopK < 0) throw new ArgumentException($"TopK must be ≥ 0, got {TopK}");
        }
        else if (SampleKeys is not null) throw new ArgumentException("SampleKeys are for sampling; set DoSample");
    }
}

/// <summary>
/// Generation output. Rows are grouped by input (NumReturnSequences per input, best first for beam search).
/// <see cref="Sequences"/> [N, L] start with the decoder start token; after EOS, beam rows hold EOS and
/// greedy/sampled rows hold pad (HF's conventions). <see cref="TokenLogProbs"/> [N, L-1] are the log-probs of
/// each generated token (beam search: HF transition scores — the processed log-softmax — 0 after the end;
/// greedy/sampling: log-softmax of the processed (repetition penalty, min-length) but unwarped logits of the chosen
/// token, also for pad after the end, as HF computes). <see cref="TokenMask"/>
/// marks generated tokens up to and including EOS. <see cref="SequenceScores"/> [N]: beam search's
/// length-normalised HF <c>sequences_scores</c>; greedy/sampling: the sum of masked token log-probs.
/// </summary>
public sealed class GenerationResult : IDisposable
{
    public required Tensor Sequences { get; init; }
    public required Tensor TokenLogProbs { get; init; }
    public required Tensor TokenMask { get; init; }
    public required Tensor SequenceScores { get; init; }

    public void Dispose()
    {
        Sequences.Dispose(); TokenLogProbs.Dispose(); TokenMask.Dispose(); SequenceScores.Dispose();
    }
}

/// <summary>
/// Batched decoding for T5 on the model's device with a preallocated KV cache: beam search with the semantics of
/// transformers 5.x's vectorised <c>_beam_search</c>, greedy, and multinomial sampling. No per-token host round-trip:
/// done-flags and beam bookkeeping stay on the device; the host only polls "all finished" every few steps.
/// </summary>
public static class Seq2SeqGeneration
{
    private const double Neg = -1.0e9;

    /// <summary>Generates from encoder states [B, S, D] (eval mode, no gradients).</summary>
    public static GenerationResult Generate(T5ForConditionalGeneration lm, Tensor encoderHidden, Tensor? encoderMask, GenerationOptions o)
    {
        o.Validate();
        using var noGrad = no_grad();
        if (o.NumBeams > 1)
        {
            if (o.DoSample) throw new NotSupportedException("beam sampling is not supported; use NumBeams = 1 with DoSample");
            if (o.NumReturnSequences > o.NumBeams) throw new ArgumentException($"NumReturnSequences ({o.NumReturnSequences}) must be ≤ NumBeams ({o.NumBeams})");
            return BeamSearch(lm, encoderHidden, encoderMask, o);
        }
        if (!o.DoSample && o.NumReturnSequences > 1) throw new ArgumentException("greedy decoding returns one sequence per input; use DoSample or beams");
        return SampleOrGreedy(lm, encoderHidden, encoderMask, o);
    }

    // arange(n) through the overload that takes every Scalar: the short ones make their start and step as temporaries.
    private static Tensor Range(long n, Device dev) => arange(Scalars.Of(0L), Scalars.Of(n), Scalars.One, dtype: ScalarType.Int64, device: dev);

    private static GenerationResult BeamSearch(T5ForConditionalGeneration lm, Tensor enc, Tensor? encMask, GenerationOptions o)
    {
        var c = lm.Config;
        long b = enc.shape[0], k = o.NumBeams, v = c.VocabSize, maxNew = o.MaxNewTokens, maxLen = maxNew + 1, keep = 2 * k;
        var dev = enc.device;
        using var outer = NewDisposeScope();
        using var cache = lm.CreateCache(enc, encMask, maxLen, k);
        var runSeq = full(b, k, maxLen, Scalars.Of((long)c.EosTokenId), dtype: ScalarType.Int64, device: dev);
        runSeq.select(2, 0).fill_(Scalars.Of((long)c.DecoderStartTokenId));
        var runTok = zeros(b, k, maxNew, dtype: ScalarType.Float32, device: dev);
        var runScores = zeros(b, k, dtype: ScalarType.Float32, device: dev);
        runScores.narrow(1, 1, k - 1).fill_(Scalars.Of(Neg));
        var seqs = runSeq.clone();
        var tokScores = zeros(b, k, maxNew, dtype: ScalarType.Float32, device: dev);
        var beamScores = full(b, k, Scalars.Of(Neg), dtype: ScalarType.Float32, device: dev);
        var finLen = zeros(b, k, dtype: ScalarType.Int64, device: dev);
        var isFinished = zeros(b, k, dtype: ScalarType.Bool, device: dev);
        var unsatisfied = ones(b, 1, dtype: ScalarType.Bool, device: dev);
        var topMask = cat([ones(k, dtype: ScalarType.Bool, device: dev), zeros(keep - k, dtype: ScalarType.Bool, device: dev)]).unsqueeze(0);
        var batchOffset = Range(b, dev).mul(Scalars.Of((long)k)).unsqueeze(1);
        var tokens = full(b * k, Scalars.Of((long)c.DecoderStartTokenId), dtype: ScalarType.Int64, device: dev);
        var stop = zeros(1, dtype: ScalarType.Bool, device: dev);

        for (long step = 0; step < maxNew; step++)
        {
            using var scope = NewDisposeScope();
            long curLen = step + 1;
            var logits = lm.Step(cache, tokens, step).to(ScalarType.Float32);
            // HF 5.x's _beam_search runs the processors on the log-softmax, not on the logits (so a penalty leaves the row unnormalised).
            var history = o.RepetitionPenalty != 1.0 ? runSeq.narrow(2, 0, curLen).reshape(b * k, curLen) : null;
            var logp = ProcessScores(F.log_softmax(logits, 1), history, step, o, c.EosTokenId);
            var flatLogp = logp.view(b, k * v);
            var acc = logp.view(b, k, v).add(runScores.unsqueeze(2), Scalars.One).view(b, k * v);
            var (topVals, topIdx) = topk(acc, (int)keep, dim: 1);
            var parent = topIdx.div(Scalars.Of(v), rounding_mode: RoundingMode.floor);
            var tok = topIdx.remainder(Scalars.Of(v));
            var topSeq = runSeq.gather(1, parent.unsqueeze(2).expand(b, keep, maxLen)).clone();
            topSeq.select(2, curLen).copy_(tok);
            var topTok = runTok.gather(1, parent.unsqueeze(2).expand(b, keep, maxNew)).clone();
            topTok.select(2, step).copy_(flatLogp.gather(1, topIdx));
            var hits = curLen + 1 >= maxLen ? ones_like(tok, dtype: ScalarType.Bool) : tok.eq(Scalars.Of((long)c.EosTokenId));

            // Beams that just finished leave the running set.
            var runCand = topVals.add(hits.to(ScalarType.Float32).mul(Scalars.Of(Neg)), Scalars.One);
            var next = topk(runCand, (int)k, dim: 1).indices;
            var newRunSeq = topSeq.gather(1, next.unsqueeze(2).expand(b, k, maxLen));
            var newRunTok = topTok.gather(1, next.unsqueeze(2).expand(b, k, maxNew));
            var newRunScores = runCand.gather(1, next);
            var parentOfNext = parent.gather(1, next);

            // Only the top-K candidates may enter the finished set, length-normalised.
            var justFinished = hits.logical_and(topMask);
            var cand = topVals.div(Scalars.Of(Math.Pow(curLen, o.LengthPenalty)));
            if (o.EarlyStopping == EarlyStopping.True)
                cand = cand.add(isFinished.all(1, keepdim: true).to(ScalarType.Float32).mul(Scalars.Of(Neg)), Scalars.One);
            cand = cand.add(unsatisfied.logical_not().to(ScalarType.Float32).mul(Scalars.Of(Neg)), Scalars.One);
            cand = cand.add(justFinished.logical_not().to(ScalarType.Float32).mul(Scalars.Of(Neg)), Scalars.One);
            var mScores = cat([beamScores, cand], 1);
            var mIdx = topk(mScores, (int)k, dim: 1).indices;
            var mSeq = cat([seqs, topSeq], 1).gather(1, mIdx.unsqueeze(2).expand(b, k, maxLen));
            var mTok = cat([tokScores, topTok], 1).gather(1, mIdx.unsqueeze(2).expand(b, k, maxNew));
            var mFin = cat([isFinished, justFinished], 1).gather(1, mIdx);
            var mLen = cat([finLen, full(b, keep, Scalars.Of(curLen), dtype: ScalarType.Int64, device: dev)], 1).gather(1, mIdx);
            var mBeam = mScores.gather(1, mIdx);

            // Early-stop heuristic of HF (per input, monotone): can the best running beam still beat the worst finished one?
            var hypothetical = o.EarlyStopping == EarlyStopping.Never && o.LengthPenalty > 0 ? maxLen - 1 : curLen;
            var best = newRunScores.narrow(1, 0, 1).div(Scalars.Of(Math.Pow(hypothetical, o.LengthPenalty)));
            var worst = where(mFin, mBeam.min(1, keepdim: true).values.expand(b, k), full_like(mBeam, Scalars.Of(Neg)));
            var newUnsatisfied = unsatisfied.logical_and(best.gt(worst).any(1, keepdim: true));
            var openBeams = o.EarlyStopping == EarlyStopping.True ? mFin.all().logical_not() : ones(1, dtype: ScalarType.Bool, device: dev).squeeze();
            var more = newUnsatisfied.any().logical_and(openBeams).logical_and(hits.all().logical_not());

            runSeq.copy_(newRunSeq); runTok.copy_(newRunTok); runScores.copy_(newRunScores);
            seqs.copy_(mSeq); tokScores.copy_(mTok); isFinished.copy_(mFin); finLen.copy_(mLen); beamScores.copy_(mBeam);
            unsatisfied.copy_(newUnsatisfied);
            stop.copy_(more.logical_not().reshape(1));
            if (step + 1 < maxNew)
            {
                cache.Reorder(parentOfNext.add(batchOffset, Scalars.One).view(-1), curLen);
                tokens.copy_(runSeq.select(2, curLen).reshape(-1));
            }
            // Steps after HF would have stopped change nothing (finished sets are frozen by `unsatisfied`); polling only saves time.
            if (o.CheckFinishedEvery > 0 && (step + 1) % o.CheckFinishedEvery == 0 && stop.item<bool>()) break;
        }

        long r = o.NumReturnSequences;
        var outLen = finLen.narrow(1, 0, r);
        long l = 1 + outLen.max().item<long>();
        var sequences = seqs.narrow(1, 0, r).reshape(b * r, maxLen).narrow(1, 0, l).contiguous();
        var tokenLp = tokScores.narrow(1, 0, r).reshape(b * r, maxNew).narrow(1, 0, l - 1).contiguous();
        var mask = Range(l - 1, dev).unsqueeze(0) < outLen.reshape(b * r, 1);
        var scores = beamScores.narrow(1, 0, r).reshape(b * r).contiguous();
        return new GenerationResult
        {
            Sequences = sequences.MoveToOuterDisposeScope(),
            TokenLogProbs = tokenLp.MoveToOuterDisposeScope(),
            TokenMask = mask.MoveToOuterDisposeScope(),
            SequenceScores = scores.MoveToOuterDisposeScope(),
        };
    }

    /// <summary>
    /// HF's logits processors in HF's order on one step's scores [N, V] of rows whose decoder inputs so far are
    /// <paramref name="inputIds"/> [N, step + 1] (start token included; only read with a repetition penalty): repetition
    /// penalty, then the EOS ban of min_length / min_new_tokens. May write into <paramref name="scores"/>.
    /// </summary>
    public static Tensor ProcessScores(Tensor scores, Tensor? inputIds, long step, GenerationOptions o, long eos)
    {
        var s = o.RepetitionPenalty != 1.0
            ? RepetitionPenalty(scores, inputIds ?? throw new ArgumentNullException(nameof(inputIds), "a repetition penalty needs the decoder inputs"), o.RepetitionPenalty)
            : scores;
        if (o.SuppressesEos(step)) s.select(1, eos).fill_(Scalars.Of(double.NegativeInfinity));
        return s;
    }

    /// <summary>
    /// HF's RepetitionPenaltyLogitsProcessor: every id present in a row of <paramref name="inputIds"/> (once, however often
    /// it occurs) gets score·p when its score is negative, score/p otherwise. For T5 the decoder start token (= pad) counts.
    /// </summary>
    public static Tensor RepetitionPenalty(Tensor scores, Tensor inputIds, double penalty)
    {
        using var scope = NewDisposeScope();
        var picked = scores.gather(1, inputIds);
        var penalised = where(picked.lt(Scalars.Of(0.0)), picked.mul(Scalars.Of(penalty)), picked.div(Scalars.Of(penalty)));
        return scores.scatter(1, inputIds, penalised).MoveToOuterDisposeScope();
    }

    /// <summary>HF warpers in HF's order: temperature, top-k, top-p (keeping at least one token).</summary>
    public static Tensor WarpLogits(Tensor logits, double temperature, int topK, double topP)
    {
        using var scope = NewDisposeScope();
        var s = temperature != 1.0 ? logits.div(Scalars.Of(temperature)) : logits;
        if (topK > 0 && topK < s.shape[1])
        {
            var kth = topk(s, topK, dim: 1).values.narrow(1, topK - 1, 1);
            s = s.masked_fill(s < kth, Scalars.Of(double.NegativeInfinity));
        }
        if (topP < 1.0)
        {
            var (sorted, idx) = sort(s, dim: 1, descending: false);
            var cum = F.softmax(sorted, 1).cumsum(1);
            var remove = cum.le(Scalars.Of(1 - topP));
            remove.narrow(1, remove.shape[1] - 1, 1).fill_(Scalars.Of(false));
            var removeOrig = zeros_like(remove).scatter(1, idx, remove);
            s = s.masked_fill(removeOrig, Scalars.Of(double.NegativeInfinity));
        }
        return s.MoveToOuterDisposeScope();
    }

    private static GenerationResult SampleOrGreedy(T5ForConditionalGeneration lm, Tensor enc, Tensor? encMask, GenerationOptions o)
    {
        var c = lm.Config;
        long b = enc.shape[0], r = o.NumReturnSequences, n = b * r, maxNew = o.MaxNewTokens, maxLen = maxNew + 1;
        if (o.SampleKeys is { } keys && keys.Count != n)
            throw new ArgumentException($"SampleKeys has {keys.Count} keys for {n} rows ({b} inputs × {r} sequences)");
        var dev = enc.device;
        using var outer = NewDisposeScope();
        using var cache = lm.CreateCache(enc, encMask, maxLen, r);
        var seq = full(n, maxLen, Scalars.Of((long)c.PadTokenId), dtype: ScalarType.Int64, device: dev);
        seq.select(1, 0).fill_(Scalars.Of((long)c.DecoderStartTokenId));
        var tokLp = zeros(n, maxNew, dtype: ScalarType.Float32, device: dev);
        var finished = zeros(n, dtype: ScalarType.Bool, device: dev);
        var lengths = full(n, Scalars.Of(maxNew), dtype: ScalarType.Int64, device: dev);
        var tokens = full(n, Scalars.Of((long)c.DecoderStartTokenId), dtype: ScalarType.Int64, device: dev);
        var uniforms = o.SampleKeys is null ? null : KeyedSampling.Uniforms(o.SampleKeys, maxNew, dev);
        for (long step = 0; step < maxNew; step++)
        {
            using var scope = NewDisposeScope();
            // HF's _sample runs the processors on the raw logits; the warpers (sampling only) come after them.
            var logits = ProcessScores(lm.Step(cache, tokens, step).to(ScalarType.Float32), seq.narrow(1, 0, step + 1), step, o, c.EosTokenId);
            var logp = F.log_softmax(logits, 1);
            Tensor next;
            if (o.DoSample)
            {
                var probs = F.softmax(WarpLogits(logits, o.Temperature, o.TopK, o.TopP), 1);
                next = uniforms is null ? multinomial(probs, 1, generator: o.Generator).squeeze(1) : KeyedSampling.Draw(probs, uniforms.select(1, step));
            }
            else next = logits.argmax(1);
            next = where(finished, full_like(next, Scalars.Of((long)c.PadTokenId)), next);
            seq.select(1, step + 1).copy_(next);
            tokLp.select(1, step).copy_(logp.gather(1, next.unsqueeze(1)).squeeze(1));
            var isEos = next.eq(Scalars.Of((long)c.EosTokenId));
            lengths.copy_(where(finished.logical_not().logical_and(isEos), full_like(lengths, Scalars.Of(step + 1)), lengths));
            finished.logical_or_(isEos);
            tokens.copy_(next);
            if (o.CheckFinishedEvery > 0 && (step + 1) % o.CheckFinishedEvery == 0 && finished.all().item<bool>()) break;
        }
        long l = 1 + lengths.max().item<long>();
        var mask = Range(l - 1, dev).unsqueeze(0) < lengths.unsqueeze(1);
        var tokenLp = tokLp.narrow(1, 0, l - 1).contiguous();
        return new GenerationResult
        {
            Sequences = seq.narrow(1, 0, l).contiguous().MoveToOuterDisposeScope(),
            TokenLogProbs = tokenLp.MoveToOuterDisposeScope(),
            TokenMask = mask.MoveToOuterDisposeScope(),
            SequenceScores = (tokenLp * mask.to(ScalarType.Float32)).sum(1).MoveToOuterDisposeScope(),
        };
    }

    /// <summary>
    /// Teacher-forced log-probs (with gradients) of given sequences [N, L] (start token first) under encoder states
    /// [B, S, D], N = B·K (each encoder row repeated K times). Returns token log-probs [N, L-1] and the mask of tokens
    /// up to and including the first EOS (later EOS/pad fill is masked out).
    /// </summary>
    public static (Tensor TokenLogProbs, Tensor Mask) SequenceLogProbs(T5ForConditionalGeneration lm, Tensor encoderHidden, Tensor? encoderMask, Tensor sequences)
    {
        using var scope = NewDisposeScope();
        long b = encoderHidden.shape[0], n = sequences.shape[0], l = sequences.shape[1];
        if (n % b != 0) throw new ArgumentException($"sequences has {n} rows, not a multiple of the {b} encoder rows");
        var k = n / b;
        var enc = k == 1 ? encoderHidden : encoderHidden.repeat_interleave(k, 0);
        var mask = encoderMask is null ? null : (k == 1 ? encoderMask : encoderMask.repeat_interleave(k, 0));
        var input = sequences.narrow(1, 0, l - 1);
        var target = sequences.narrow(1, 1, l - 1);
        var logits = lm.Decode(enc, mask, input).to(ScalarType.Float32);
        var lp = F.log_softmax(logits, 2).gather(2, target.unsqueeze(2)).squeeze(2);
        var valid = TokenMask(target, lm.Config.EosTokenId);
        return ((lp * valid.to(ScalarType.Float32)).MoveToOuterDisposeScope(), valid.MoveToOuterDisposeScope());
    }

    /// <summary>True for generated tokens up to and including the first EOS.</summary>
    public static Tensor TokenMask(Tensor generated, long eos)
    {
        using var scope = NewDisposeScope();
        var isEos = generated.eq(Scalars.Of(eos)).to(ScalarType.Int64);
        return isEos.cumsum(1).sub(isEos).eq(Scalars.Of(0L)).MoveToOuterDisposeScope();
    }
}
