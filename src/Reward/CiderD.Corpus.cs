using System.Runtime.CompilerServices;

namespace Scst.Reward;

// Evaluation mode, what pycocoevalcap does: the document frequencies come from the references being scored.
// Each image is cooked once; its n-grams get corpus-wide ids and the df is counted over them; then every image is scored.
public static partial class CiderD
{
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
        cooker.AddSentences(refs, eosId);
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
}
