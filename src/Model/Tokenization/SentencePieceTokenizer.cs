using Ml = Microsoft.ML.Tokenizers;

namespace Scst.Model.Tokenization;

/// <summary>
/// T5's SentencePiece (Unigram) tokenizer, read from <c>spiece.model</c> through Microsoft.ML.Tokenizers. Encoding
/// appends EOS and no BOS, like HF's <c>T5Tokenizer</c>; decoding drops pad, eos, unk and the sentinel
/// <c>&lt;extra_id_N&gt;</c> ids that HF appends after the model's pieces (ids ≥ the piece count).
/// </summary>
public sealed class SentencePieceTokenizer : ICaptionTokenizer
{
    private readonly Ml.SentencePieceTokenizer _inner;

    private SentencePieceTokenizer(Ml.SentencePieceTokenizer inner, int padId, int pieceCount, int extraIds)
    {
        _inner = inner;
        PadId = padId;
        PieceCount = pieceCount;
        VocabSize = pieceCount + extraIds;
    }

    /// <summary>Pieces in the model file; HF T5's vocabulary adds <c>extra_ids</c> sentinels after them.</summary>
    public int PieceCount { get; }
    public int VocabSize { get; }
    public int PadId { get; }
    public int EosId => _inner.EndOfSentenceId;
    public int UnkId => _inner.UnknownId;

    public static SentencePieceTokenizer Load(string path, int extraIds = 100)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"SentencePiece model '{path}' does not exist.", path);
        using var stream = File.OpenRead(path);
        return Load(stream, path, extraIds);
    }

    public static SentencePieceTokenizer Load(Stream stream, string source, int extraIds = 100)
    {
        Ml.SentencePieceTokenizer inner;
        try
        {
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var bytes = WithBosForLibrary(buffer.ToArray());
            inner = Ml.SentencePieceTokenizer.Create(new MemoryStream(bytes), addBeginningOfSentence: false, addEndOfSentence: true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{source}: not a readable SentencePiece model ({e.GetType().Name}: {e.Message}).", e);
        }
        var vocab = inner.Vocabulary;
        if (!vocab.TryGetValue("<pad>", out var pad))
            throw new InvalidDataException($"{source}: the model has no '<pad>' piece; T5 models define <pad> = 0.");
        // Count ids, not names: the library also maps the BOS name ("<s>") to the id patched in above.
        return new SentencePieceTokenizer(inner, pad, vocab.Values.Max() + 1, extraIds);
    }

    public int[] Encode(string text, bool addEos = true) =>
        _inner.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: addEos).ToArray();

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        var list = ids.ToList();
        foreach (var id in list)
            if (id < 0 || id >= VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside the vocabulary of {VocabSize}.");
        if (skipSpecialTokens)
            list = list.Where(id => id != PadId && id != EosId && id != UnkId && id < PieceCount).ToList();
        else if (list.Any(id => id >= PieceCount))
            throw new ArgumentException($"sentinel ids (≥ {PieceCount}) have no text in the SentencePiece model; decode with skipSpecialTokens.", nameof(ids));
        return _inner.Decode(list, considerSpecialTokens: !skipSpecialTokens) ?? "";
    }

    /// <summary>
    /// T5's model declares no BOS (<c>trainer_spec.bos_id = -1</c>), and Microsoft.ML.Tokenizers 2.0.1's Unigram
    /// constructor indexes its piece table with that id (IndexOutOfRangeException). Since BOS is never emitted here,
    /// point it at the pad piece: protobuf merges repeated sub-messages, so appending a <c>trainer_spec</c> that
    /// holds only <c>bos_id</c> overrides that one field and leaves the rest of the model untouched.
    /// </summary>
    public static byte[] WithBosForLibrary(byte[] model)
    {
        var (bos, pad) = ReadSpecialIds(model);
        if (bos >= 0) return model;
        var target = pad >= 0 ? pad : 0;
        var inner = new List<byte>();
        WriteVarint(inner, 41 << 3 | 0);
        WriteVarint(inner, (ulong)target);
        var patch = new List<byte>();
        WriteVarint(patch, 2 << 3 | 2);
        WriteVarint(patch, (ulong)inner.Count);
        patch.AddRange(inner);
        return [.. model, .. patch];
    }

    /// <summary>bos_id and pad_id from <c>ModelProto.trainer_spec</c> (defaults 1 and −1 as in sentencepiece_model.proto).</summary>
    private static (long Bos, long Pad) ReadSpecialIds(byte[] model)
    {
        long bos = 1, pad = -1;
        var pos = 0;
        while (pos < model.Length)
        {
            var tag = ReadVarint(model, ref pos);
            var (field, wire) = ((int)(tag >> 3), (int)(tag & 7));
            if (wire == 2)
            {
                var len = (int)ReadVarint(model, ref pos);
                if (len < 0 || pos + len > model.Length) throw new InvalidDataException("truncated protobuf field.");
                if (field == 2)
                {
                    var p = pos;
                    while (p < pos + len)
                    {
                        var t = ReadVarint(model, ref p);
                        var (f, w) = ((int)(t >> 3), (int)(t & 7));
                        if (w == 0)
                        {
                            var v = (long)ReadVarint(model, ref p);
                            if (f == 41) bos = (int)v;
                            else if (f == 43) pad = (int)v;
                        }
                        else Skip(model, ref p, w);
                    }
                }
                pos += len;
            }
            else Skip(model, ref pos, wire);
        }
        return (bos, pad);
    }

    private static void Skip(byte[] b, ref int pos, int wire)
    {
        switch (wire)
        {
            case 0: ReadVarint(b, ref pos); break;
            case 1: pos += 8; break;
            case 2: var len = (int)ReadVarint(b, ref pos); pos += len; break;
            case 5: pos += 4; break;
            default: throw new InvalidDataException($"unsupported protobuf wire type {wire}.");
        }
        if (pos > b.Length) throw new InvalidDataException("truncated protobuf field.");
    }

    private static ulong ReadVarint(byte[] b, ref int pos)
    {
        ulong v = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (pos >= b.Length) throw new InvalidDataException("truncated protobuf varint.");
            var x = b[pos++];
            v |= (ulong)(x & 0x7F) << shift;
            if (x < 0x80) return v;
        }
        throw new InvalidDataException("malformed protobuf varint.");
    }

    private static void WriteVarint(List<byte> o, ulong v)
    {
        while (v >= 0x80) { o.Add((byte)(v | 0x80)); v >>= 7; }
        o.Add((byte)v);
    }
}
