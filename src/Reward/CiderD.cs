using System.Runtime.CompilerServices;

namespace Scst.Reward;

/// <summary>CIDEr-D scores of a corpus: the <c>np.mean</c> of the per-image scores, and the per-image scores in input order.</summary>
public sealed record CiderScores(double Corpus, double[] PerImage);

/// <summary>
/// CIDEr-D (Vedantam et al. 2015) computed exactly as pycocoevalcap's <c>cider_scorer.py</c>:
/// n = 1..4, σ = 6, tf-idf with raw counts and idf = ln(N) − ln(max(1, df)), clipped similarity
/// Σ min(h, r)·r / (‖h‖·‖r‖), Gaussian penalty on the difference of bigram counts, mean over n,
/// mean over references, ×10. Works on int token ids; see <see cref="Vocabulary"/> for strings.
/// </summary>
public static class CiderD
{
    public const double Sigma = 6.0;

    /// <summary>
    /// Evaluation mode, what pycocoevalcap does: document frequencies come from the references being
    /// scored, N = number of images. <paramref name="eosId"/> &gt;= 0 appends that token to every sentence.
    /// <paramref name="degreeOfParallelism"/> 1 runs on the calling thread only; the scores do not depend on it.
    /// </summary>
    public static CiderScores Score(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references,
        int eosId = -1, int degreeOfParallelism = 1)
    {
        Validate(candidates, references);
        var perImage = degreeOfParallelism <= 1 || references.Count < 2
            ? CorpusSequential(candidates, references, eosId)
            : CorpusParallel(candidates, references, eosId, degreeOfParallelism);
        return new CiderScores(NumpyCompat.Mean(perImage), perImage);
    }

    /// <summary>Fixed document frequencies (training reward, self-critical.pytorch's cached df): N = df.NumImages, EOS as the df was built.</summary>
    public static CiderScores Score(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references,
        DocumentFrequency df, int degreeOfParallelism = 1)
    {
        Validate(candidates, references);
        return ScoreWith(candidates, references, df.EosId, [df.Map], df.NumImages, degreeOfParallelism);
    }

    private static void Validate(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references)
    {
        if (candidates.Count != references.Count)
            throw new ArgumentException($"{candidates.Count} candidates but {references.Count} reference sets; need one candidate per image");
        for (int i = 0; i < references.Count; i++)
            if (references[i].Count == 0) throw new ArgumentException($"image #{i} has no references");
    }

    /// <summary>
    /// Document frequency = number of images whose reference set contains the n-gram. Images are
    /// cooked in parallel chunks; their distinct n-grams go to buckets by key hash, and each hash
    /// shard is then counted by one thread, so no map is ever written by two threads.
    /// </summary>
    internal static NGramCountMap[] CountDocumentFrequency(IReadOnlyList<IReadOnlyList<int[]>> references, int eosId, int dop)
    {
        int images = references.Count;
        int shardCount = dop <= 1 ? 1 : dop * 4;
        int chunkCount = dop <= 1 ? 1 : Math.Min(images, dop * 8);
        if (chunkCount == 0) return [new NGramCountMap()];
        if (dop <= 1)
        {
            // One thread: count straight into the map, no key buckets (they cost ~24 bytes per n-gram occurrence).
            var cooker = ImageCooker.ForThread();
            var map = new NGramCountMap(images * 16);
            for (int i = 0; i < images; i++)
            {
                cooker.Reset();
                var refs = references[i];
                for (int j = 0; j < refs.Count; j++) cooker.AddSentence(refs[j], eosId);
                for (int l = 0; l < cooker.LocalCount; l++) map.Add(cooker.KeyLo[l], cooker.KeyHi[l], cooker.KeyHash[l], 1);
            }
            return [map];
        }
        var buckets = new KeyBucket[chunkCount, shardCount];
        Parallel.For(0, chunkCount, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, dop) }, chunk =>
        {
            var cooker = ImageCooker.ForThread();
            for (int p = 0; p < shardCount; p++) buckets[chunk, p] = new KeyBucket();
            int from = (int)((long)images * chunk / chunkCount), to = (int)((long)images * (chunk + 1) / chunkCount);
            for (int i = from; i < to; i++)
            {
                cooker.Reset();
                var refs = references[i];
                for (int j = 0; j < refs.Count; j++) cooker.AddSentence(refs[j], eosId);
                for (int l = 0; l < cooker.LocalCount; l++)
                    buckets[chunk, ShardOf(cooker.KeyHash[l], shardCount)].Add(cooker.KeyLo[l], cooker.KeyHi[l], cooker.KeyHash[l]);
            }
        });
        var shards = new NGramCountMap[shardCount];
        Parallel.For(0, shardCount, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, dop) }, p =>
        {
            int total = 0;
            for (int c = 0; c < chunkCount; c++) total += buckets[c, p].Count;
            var map = new NGramCountMap(Math.Max(16, total / 3));
            for (int c = 0; c < chunkCount; c++)
            {
                var b = buckets[c, p];
                for (int j = 0; j < b.Count; j++) map.Add(b.Lo[j], b.Hi[j], b.Hash[j], 1);
            }
            shards[p] = map;
        });
        return shards;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int ShardOf(ulong hash, int shardCount) => shardCount == 1 ? 0 : (int)((hash >> 40) % (ulong)shardCount);

    /// <summary>
    /// One thread: each image is cooked once; its n-grams get corpus-wide ids (reference n-grams add 1
    /// to their df) and the cooked image is kept; then every image is scored from the finished df.
    /// </summary>
    private static double[] CorpusSequential(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references, int eosId)
    {
        int images = references.Count;
        using var corpus = NewCorpus(candidates, references, 0, images, eosId, keepKeys: false);
        var cooker = ImageCooker.ForThread();
        using var ids = new NGramCountMap(EstimateDistinct(corpus), pooled: true);
        var df = new int[EstimateDistinct(corpus)];
        var gid = corpus.Gid;
        for (int i = 0; i < images; i++)
        {
            int refLocal = CookImage(cooker, candidates[i], references[i], eosId);
            int local = cooker.LocalCount, baseId = corpus.ImageLocal[i];
            var hash = cooker.KeyHash;
            for (int l = 0; l < Math.Min(PrefetchDistance, local); l++) ids.Prefetch(hash[l]);
            for (int l = 0; l < local; l++)
            {
                if (l + PrefetchDistance < local) ids.Prefetch(hash[l + PrefetchDistance]);
                gid[baseId + l] = AssignId(ids, ref df, cooker.KeyLo[l], cooker.KeyHi[l], hash[l], inReference: l < refLocal);
            }
            corpus.Append(cooker);
        }
        var perImage = new double[images];
        ScoreCooked(corpus, [df], shardBits: 0, offset: 0, perImage);
        return perImage;
    }

    /// <summary>
    /// All cores: chunks of images are cooked in parallel and each local n-gram is routed to a hash shard;
    /// each shard's ids and df are built by one thread (no map is written by two); then chunks are scored in parallel.
    /// A corpus-wide id packs the shard in its low <c>shardBits</c> bits.
    /// </summary>
    private static double[] CorpusParallel(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references, int eosId, int dop)
    {
        int images = references.Count;
        int shardBits = 0;
        while ((1 << shardBits) < Math.Min(64, dop * 4)) shardBits++;
        int shardCount = 1 << shardBits, chunkCount = Math.Min(images, dop * 4);
        var options = new ParallelOptions { MaxDegreeOfParallelism = dop };
        var chunks = new CookedCorpus[chunkCount];
        var routes = new IntList[chunkCount, shardCount];
        Parallel.For(0, chunkCount, options, c =>
        {
            int from = ChunkStart(images, chunkCount, c), to = ChunkStart(images, chunkCount, c + 1);
            var corpus = chunks[c] = NewCorpus(candidates, references, from, to, eosId, keepKeys: true);
            for (int p = 0; p < shardCount; p++) routes[c, p] = new IntList();
            var cooker = ImageCooker.ForThread();
            for (int i = from; i < to; i++)
            {
                int refLocal = CookImage(cooker, candidates[i], references[i], eosId);
                int baseId = corpus.ImageLocal[i - from];
                // The top bit marks an n-gram that occurs in a reference of its image.
                for (int l = 0; l < cooker.LocalCount; l++)
                    routes[c, ShardOf(cooker.KeyHash[l], shardCount)].Add((baseId + l) | (l < refLocal ? int.MinValue : 0));
                corpus.Append(cooker);
            }
        });
        var shardDf = new int[shardCount][];
        Parallel.For(0, shardCount, options, p =>
        {
            int routed = 0;
            for (int c = 0; c < chunkCount; c++) routed += routes[c, p].Count;
            using var ids = new NGramCountMap(Math.Max(16, routed / 3), pooled: true);
            var df = new int[Math.Max(16, routed / 3)];
            for (int c = 0; c < chunkCount; c++)
            {
                var corpus = chunks[c];
                var route = routes[c, p];
                ulong[] lo = corpus.KeyLo!, hi = corpus.KeyHi!, hash = corpus.KeyHash!;
                for (int j = 0; j < route.Count; j++)
                {
                    if (j + PrefetchDistance < route.Count) ids.Prefetch(hash[route.Items[j + PrefetchDistance] & int.MaxValue]);
                    int entry = route.Items[j], pos = entry & int.MaxValue;
                    corpus.Gid[pos] = (AssignId(ids, ref df, lo[pos], hi[pos], hash[pos], inReference: entry < 0) << shardBits) | p;
                }
            }
            shardDf[p] = df;
        });
        var perImage = new double[images];
        Parallel.For(0, chunkCount, options, c =>
        {
            ScoreCooked(chunks[c], shardDf, shardBits, ChunkStart(images, chunkCount, c), perImage);
            chunks[c].Dispose();
        });
        return perImage;
    }

    private const int PrefetchDistance = 12;

    /// <summary>The n-gram's corpus-wide id (new ids in insertion order); an n-gram of a reference adds 1 to its df.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int AssignId(NGramCountMap ids, ref int[] df, ulong lo, ulong hi, ulong hash, bool inReference)
    {
        int id = ids.GetOrAddId(lo, hi, hash);
        if (id >= df.Length) Array.Resize(ref df, df.Length * 2);
        if (inReference) df[id]++;
        return id;
    }

    private static int ChunkStart(int images, int chunks, int c) => (int)((long)images * c / chunks);

    /// <summary>Cooks an image's references, then its candidate (the last sentence); returns how many local ids the references introduced.</summary>
    private static int CookImage(ImageCooker cooker, int[] candidate, IReadOnlyList<int[]> refs, int eosId)
    {
        cooker.Reset();
        for (int j = 0; j < refs.Count; j++) cooker.AddSentence(refs[j], eosId);
        int refLocal = cooker.LocalCount;
        cooker.AddSentence(candidate, eosId);
        return refLocal;
    }

    private static CookedCorpus NewCorpus(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references, int from, int to, int eosId, bool keepKeys)
    {
        long tokens = 0;
        int sentences = 0, extra = eosId >= 0 ? 1 : 0;
        for (int i = from; i < to; i++)
        {
            var refs = references[i];
            tokens += candidates[i].Length + extra;
            for (int j = 0; j < refs.Count; j++) tokens += refs[j].Length + extra;
            sentences += refs.Count + 1;
        }
        return new CookedCorpus(to - from, sentences, tokens, keepKeys);
    }

    /// <summary>
    /// A first size for the id map: one distinct n-gram per token of the corpus (the synthetic COCO-sized
    /// benchmark corpus has 0.85), so the map rarely has to grow; rehashing millions of n-grams costs more than the spare room.
    /// </summary>
    private static int EstimateDistinct(CookedCorpus corpus) => Math.Max(1024, corpus.EntryLocal.Length / 4);

    /// <summary>Scores the images of a cooked corpus into perImage[offset + i] with the corpus df (N = number of images).</summary>
    private static void ScoreCooked(CookedCorpus corpus, int[][] shardDf, int shardBits, int offset, double[] perImage)
    {
        int numImages = perImage.Length;
        var logDf = LogTable(numImages);
        double refLen = Math.Log(numImages);
        var scratch = CiderScratch.ForThread();
        Span<double> one = stackalloc double[1];
        for (int i = 0; i < corpus.Images; i++)
        {
            int first = corpus.ImageLocal[i];
            scratch.ComputeIdf(corpus.Gid.AsSpan(first, corpus.ImageLocal[i + 1] - first), shardDf, shardBits, logDf, refLen);
            int refs = corpus.SentenceCount(i) - 1;
            scratch.ScoreCandidates(corpus.View(i), refs, 1, 0, refs, one);
            perImage[offset + i] = one[0];
        }
    }

    private static CiderScores ScoreWith(IReadOnlyList<int[]> candidates, IReadOnlyList<IReadOnlyList<int[]>> references,
        int eosId, NGramCountMap[] shards, int numImages, int dop)
    {
        var perImage = new double[candidates.Count];
        var logDf = LogTable(numImages);
        double refLen = Math.Log(numImages);
        Parallel.ForEach(System.Collections.Concurrent.Partitioner.Create(0, candidates.Count, Math.Max(64, candidates.Count / Math.Max(1, dop * 8))),
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, dop) }, range =>
            {
                var cooker = ImageCooker.ForThread();
                var scratch = CiderScratch.ForThread();
                Span<double> one = stackalloc double[1];
                for (int i = range.Item1; i < range.Item2; i++)
                {
                    cooker.Reset();
                    cooker.AddSentence(candidates[i], eosId);
                    var refs = references[i];
                    for (int j = 0; j < refs.Count; j++) cooker.AddSentence(refs[j], eosId);
                    scratch.ComputeIdf(cooker, shards, logDf, refLen);
                    scratch.ScoreCandidates(cooker.View, 0, 1, 1, references[i].Count, one);
                    perImage[i] = one[0];
                }
            });
        return new CiderScores(NumpyCompat.Mean(perImage), perImage);
    }

    /// <summary>ln(max(1, df)) for df = 0..N, so each distinct n-gram costs a table read instead of a log.</summary>
    internal static double[] LogTable(int numImages)
    {
        var t = new double[Math.Max(2, numImages + 1)];
        for (int d = 0; d < t.Length; d++) t[d] = Math.Log(Math.Max(1.0, d));
        return t;
    }

    /// <summary>A growable int array that hands out its buffer (List&lt;int&gt; would cost a bounds-checked indexer call per item).</summary>
    private sealed class IntList
    {
        public int[] Items = new int[256];
        public int Count;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(int value)
        {
            if (Count == Items.Length) Array.Resize(ref Items, Count * 2);
            Items[Count++] = value;
        }
    }

    private sealed class KeyBucket
    {
        public ulong[] Lo = new ulong[256], Hi = new ulong[256], Hash = new ulong[256];
        public int Count;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(ulong lo, ulong hi, ulong hash)
        {
            if (Count == Lo.Length)
            {
                Array.Resize(ref Lo, Count * 2); Array.Resize(ref Hi, Count * 2); Array.Resize(ref Hash, Count * 2);
            }
            Lo[Count] = lo; Hi[Count] = hi; Hash[Count] = hash;
            Count++;
        }
    }
}

/// <summary>Per-thread buffers for the similarity computation of one image.</summary>
internal sealed class CiderScratch
{
    private double[] _idf = new double[256];
    private double[] _refVal = new double[256];
    private double[] _hypVal = new double[1024];
    private double[] _hypNorm = new double[64];
    private double[] _acc = new double[64];

    private static readonly double[] PenaltyCache = BuildPenaltyCache();

    private static double[] BuildPenaltyCache()
    {
        var c = new double[512];
        for (int d = 0; d < c.Length; d++) c[d] = NumpyCompat.LengthPenalty(d, CiderD.Sigma);
        return c;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Penalty(int delta)
    {
        int a = Math.Abs(delta);
        return a < PenaltyCache.Length ? PenaltyCache[a] : NumpyCompat.LengthPenalty(delta, CiderD.Sigma);
    }

    public void ComputeIdf(ImageCooker c, NGramCountMap[] shards, double[] logDf, double refLen)
    {
        if (_idf.Length < c.LocalCount) { _idf = new double[c.KeyLo.Length]; _refVal = new double[c.KeyLo.Length]; }
        int shardCount = shards.Length;
        for (int l = 0; l < c.LocalCount; l++)
        {
            ulong h = c.KeyHash[l];
            int df = shards[CiderD.ShardOf(h, shardCount)].Get(c.KeyLo[l], c.KeyHi[l], h);
            double log = df < logDf.Length ? logDf[df] : Math.Log(df);
            _idf[l] = refLen - log;
        }
    }

    /// <summary>idf of each local id of an image whose corpus-wide ids are <paramref name="gids"/> (shard in the low <paramref name="shardBits"/> bits).</summary>
    public void ComputeIdf(ReadOnlySpan<int> gids, int[][] shardDf, int shardBits, double[] logDf, double refLen)
    {
        if (_idf.Length < gids.Length) { _idf = new double[gids.Length * 2]; _refVal = new double[gids.Length * 2]; }
        int shardMask = (1 << shardBits) - 1;
        for (int l = 0; l < gids.Length; l++)
        {
            int g = gids[l];
            int df = shardDf[g & shardMask][g >> shardBits];
            _idf[l] = refLen - logDf[df];
        }
    }

    /// <summary>
    /// Scores candidate sentences [firstCand, firstCand + candCount) against reference sentences
    /// [firstRef, firstRef + refCount) of the cooker. Each reference's tf-idf vector is built once
    /// and shared by all candidates; per candidate the references are still summed in order.
    /// </summary>
    public void ScoreCandidates(in CookedView c, int firstCand, int candCount, int firstRef, int refCount, Span<double> output)
    {
        const int N = NGramKey.MaxOrder;
        if (_hypNorm.Length < candCount * N) { _hypNorm = new double[candCount * N * 2]; _acc = new double[candCount * N * 2]; }
        int hypEntries = c.OrderStart[5 * (firstCand + candCount - 1) + 4] - c.OrderStart[5 * firstCand];
        if (_hypVal.Length < hypEntries) _hypVal = new double[hypEntries * 2];
        int hypBase = c.OrderStart[5 * firstCand];
        var idf = _idf;
        var hypVal = _hypVal;
        var refVal = _refVal;

        for (int k = 0; k < candCount; k++)
        {
            int s = firstCand + k;
            for (int n = 0; n < N; n++)
            {
                double norm = 0.0;
                for (int e = c.OrderStart[5 * s + n]; e < c.OrderStart[5 * s + n + 1]; e++)
                {
                    double v = c.EntryCount[e] * idf[c.EntryLocal[e]];
                    hypVal[e - hypBase] = v;
                    norm += v * v;
                }
                _hypNorm[k * N + n] = Math.Sqrt(norm);
                _acc[k * N + n] = 0.0;
            }
        }

        Span<double> refNorm = stackalloc double[N];
        for (int r = 0; r < refCount; r++)
        {
            int s = firstRef + r;
            for (int n = 0; n < N; n++)
            {
                double norm = 0.0;
                for (int e = c.OrderStart[5 * s + n]; e < c.OrderStart[5 * s + n + 1]; e++)
                {
                    double v = c.EntryCount[e] * idf[c.EntryLocal[e]];
                    refVal[c.EntryLocal[e]] = v;
                    norm += v * v;
                }
                refNorm[n] = Math.Sqrt(norm);
            }
            int refLength = Math.Max(0, c.Length[s] - 1);

            for (int k = 0; k < candCount; k++)
            {
                int hs = firstCand + k;
                double penalty = Penalty(Math.Max(0, c.Length[hs] - 1) - refLength);
                for (int n = 0; n < N; n++)
                {
                    double val = 0.0;
                    for (int e = c.OrderStart[5 * hs + n]; e < c.OrderStart[5 * hs + n + 1]; e++)
                    {
                        // An n-gram absent from the reference contributes min(h, 0)·0 = 0, as in the Python defaultdict.
                        double rv = refVal[c.EntryLocal[e]];
                        val += Math.Min(hypVal[e - hypBase], rv) * rv;
                    }
                    double nh = _hypNorm[k * N + n], nr = refNorm[n];
                    if (nh != 0 && nr != 0) val /= nh * nr;
                    val *= penalty;
                    _acc[k * N + n] += val;
                }
            }

            for (int e = c.OrderStart[5 * s]; e < c.OrderStart[5 * s + 4]; e++) refVal[c.EntryLocal[e]] = 0.0;
        }

        for (int k = 0; k < candCount; k++)
        {
            // np.mean over the 4 orders (sequential below 8 elements), then / len(refs), then × 10.
            double sum = 0.0;
            for (int n = 0; n < N; n++) sum += _acc[k * N + n];
            double score = sum / N;
            score /= refCount;
            score *= 10.0;
            output[k] = score;
        }
    }

    [ThreadStatic] private static CiderScratch? t_instance;
    public static CiderScratch ForThread() => t_instance ??= new CiderScratch();
}
