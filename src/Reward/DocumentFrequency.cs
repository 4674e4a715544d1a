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
        var shards = CiderD.CountDocumentFrequency(references, eosId, degreeOfParallelism);
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
