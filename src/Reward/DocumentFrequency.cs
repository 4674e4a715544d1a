using System.Runtime.CompilerServices;
using System.Text;

namespace Scst.Reward;

/// <summary>
/// CIDEr-D document frequencies precomputed once from the training references (self-critical.pytorch's
/// cached df): df(g) = number of training images whose references contain g; N = number of training
/// images. Token ids live in <see cref="Vocabulary"/>. Whether EOS was appended is part of the table:
/// a reward that counts EOS must use a df that counted it too.
/// </summary>
public sealed class DocumentFrequency
{
    public const string DefaultEosToken = "</s>";
    private static readonly byte[] Magic = "SCSTCIDERDF1"u8.ToArray();

    internal NGramCountMap Map { get; }
    public Vocabulary Vocabulary { get; }
    public int NumImages { get; }
    /// <summary>Id of the EOS token appended to every sentence, or -1 when EOS is not counted.</summary>
    public int EosId { get; }
    public bool CountsEos => EosId >= 0;
    public int NGramCount => Map.Count;

    private DocumentFrequency(NGramCountMap map, Vocabulary vocabulary, int numImages, int eosId)
    {
        Map = map; Vocabulary = vocabulary.Freeze(); NumImages = numImages; EosId = eosId;
    }

    /// <summary>df of an n-gram given as token ids (0 when unseen).</summary>
    public int Get(ReadOnlySpan<int> ngram) => Map.Get(NGramKey.Of(ngram));

    /// <summary>Builds the table from each training image's references, already mapped to ids of <paramref name="vocabulary"/>.</summary>
    public static DocumentFrequency Build(Vocabulary vocabulary, IReadOnlyList<IReadOnlyList<int[]>> references, int eosId = -1, int degreeOfParallelism = 1)
    {
        if (references.Count == 0) throw new ArgumentException("no training images to count document frequencies from", nameof(references));
        if (eosId >= vocabulary.Count) throw new ArgumentOutOfRangeException(nameof(eosId), $"EOS id {eosId} is not in the vocabulary ({vocabulary.Count} words)");
        var shards = Count(references, eosId, degreeOfParallelism);
        NGramCountMap map;
        if (shards.Length == 1) map = shards[0];
        else
        {
            map = new NGramCountMap(shards.Sum(s => s.Count));
            foreach (var s in shards) foreach (var (k, v) in s.Entries()) map.Add(k, v);
        }
        return new DocumentFrequency(map, vocabulary, references.Count, eosId);
    }

    /// <summary>Builds the table from reference strings (already tokenized: words separated by whitespace).</summary>
    public static DocumentFrequency Build(IReadOnlyList<IReadOnlyList<string>> references, bool countEos, int degreeOfParallelism = 1)
    {
        var vocab = new Vocabulary();
        int eos = countEos ? vocab.GetOrAdd(DefaultEosToken) : -1;
        var ids = references.Select(refs => (IReadOnlyList<int[]>)refs.Select(vocab.EncodeWhitespace).ToArray()).ToArray();
        return Build(vocab, ids, eos, degreeOfParallelism);
    }

    /// <summary>
    /// Document frequency = number of images whose reference set contains the n-gram. Images are
    /// cooked in parallel chunks; their distinct n-grams go to buckets by key hash, and each hash
    /// shard is then counted by one thread, so no map is ever written by two threads.
    /// </summary>
    private static NGramCountMap[] Count(IReadOnlyList<IReadOnlyList<int[]>> references, int eosId, int dop)
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
                cooker.AddSentences(references[i], eosId);
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
                cooker.AddSentences(references[i], eosId);
                for (int l = 0; l < cooker.LocalCount; l++)
                    buckets[chunk, CiderD.ShardOf(cooker.KeyHash[l], shardCount)].Add(cooker.KeyLo[l], cooker.KeyHi[l], cooker.KeyHash[l]);
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

    /// <summary>Binary file: magic, N, EOS id, vocabulary (UTF-8 words), then (order, token ids, df) per n-gram.</summary>
    public void Save(string path)
    {
        using var w = new BinaryWriter(File.Create(path), Encoding.UTF8);
        w.Write(Magic);
        w.Write(NumImages);
        w.Write(EosId);
        w.Write(Vocabulary.Count);
        foreach (var word in Vocabulary.Words) w.Write(word);
        w.Write(Map.Count);
        foreach (var (key, df) in Map.Entries())
        {
            int order = key.Order;
            w.Write((byte)order);
            for (int i = 0; i < order; i++) w.Write(key.Token(i));
            w.Write(df);
        }
    }

    public static DocumentFrequency Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"document-frequency file '{path}' does not exist", path);
        try
        {
            using var r = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            var magic = r.ReadBytes(Magic.Length);
            if (!magic.AsSpan().SequenceEqual(Magic))
                throw new InvalidDataException($"'{path}' is not a CIDEr-D document-frequency file (bad magic; expected it to be written by DocumentFrequency.Save)");
            int numImages = r.ReadInt32(), eosId = r.ReadInt32(), words = r.ReadInt32();
            if (numImages <= 0) throw new InvalidDataException($"'{path}': number of images is {numImages}, expected > 0");
            var vocab = new Vocabulary();
            for (int i = 0; i < words; i++) vocab.GetOrAdd(r.ReadString());
            if (vocab.Count != words) throw new InvalidDataException($"'{path}': vocabulary has duplicate words");
            if (eosId >= words) throw new InvalidDataException($"'{path}': EOS id {eosId} outside the vocabulary of {words} words");
            int entries = r.ReadInt32();
            var map = new NGramCountMap(entries);
            Span<int> ngram = stackalloc int[NGramKey.MaxOrder];
            for (int e = 0; e < entries; e++)
            {
                int order = r.ReadByte();
                if (order is < 1 or > NGramKey.MaxOrder) throw new InvalidDataException($"'{path}': n-gram #{e} has order {order}, expected 1..4");
                for (int i = 0; i < order; i++)
                {
                    ngram[i] = r.ReadInt32();
                    if ((uint)ngram[i] >= (uint)words) throw new InvalidDataException($"'{path}': n-gram #{e} has token id {ngram[i]} outside the vocabulary");
                }
                int df = r.ReadInt32();
                if (df <= 0 || df > numImages) throw new InvalidDataException($"'{path}': n-gram #{e} has df {df}, expected 1..{numImages}");
                map.Add(NGramKey.Of(ngram[..order]), df);
            }
            return new DocumentFrequency(map, vocab, numImages, eosId);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"'{path}' ends early: truncated document-frequency file");
        }
    }
}
