using Scst.Model.Tokenization;

namespace Scst.Model.Tests;

/// <summary>
/// No T5 <c>spiece.model</c> is available offline, so these tests write a tiny Unigram model: a SentencePiece
/// <c>ModelProto</c> hand-encoded in protobuf wire format (pieces, trainer_spec, normalizer_spec) with T5's special
/// ids (pad 0, eos 1, unk 2, no bos).
/// </summary>
public class TokenizerSentencePieceTests
{
    private static readonly (string Piece, float Score, int Type)[] Pieces =
    [
        ("<pad>", 0, 3), ("</s>", 0, 3), ("<unk>", 0, 2),
        ("\u2581a", -2, 1), ("\u2581red", -3, 1), ("\u2581circle", -3, 1), ("\u2581on", -3, 1), ("\u2581the", -3, 1),
        ("\u2581left", -3.5f, 1), ("\u2581", -4, 1), ("s", -5, 1), ("r", -6, 1), ("e", -6, 1), ("d", -6, 1),
        ("a", -6, 1), ("c", -6, 1), ("i", -6, 1), ("l", -6, 1), ("o", -6, 1), ("n", -6, 1), ("t", -6, 1), ("h", -6, 1),
    ];

    internal static byte[] TinyUnigramModel()
    {
        using var model = new MemoryStream();
        foreach (var (piece, score, type) in Pieces)
        {
            using var p = new MemoryStream();
            WriteBytes(p, 1, System.Text.Encoding.UTF8.GetBytes(piece));
            WriteTag(p, 2, 5);
            p.Write(BitConverter.GetBytes(score));
            WriteVarintField(p, 3, (ulong)type);
            WriteBytes(model, 1, p.ToArray());
        }
        using (var t = new MemoryStream())
        {
            WriteVarintField(t, 3, 1);                    // model_type = UNIGRAM
            WriteVarintField(t, 4, (ulong)Pieces.Length); // vocab_size
            WriteVarintField(t, 40, 2);                   // unk_id
            WriteVarintField(t, 41, unchecked((ulong)-1L)); // bos_id = -1 (none), int32 as 10-byte varint
            WriteVarintField(t, 42, 1);                   // eos_id
            WriteVarintField(t, 43, 0);                   // pad_id
            WriteBytes(model, 2, t.ToArray());
        }
        using (var n = new MemoryStream())
        {
            WriteBytes(n, 1, "identity"u8.ToArray());
            WriteVarintField(n, 3, 1); // add_dummy_prefix
            WriteVarintField(n, 4, 1); // remove_extra_whitespaces
            WriteVarintField(n, 5, 1); // escape_whitespaces
            WriteBytes(model, 3, n.ToArray());
        }
        return model.ToArray();
    }

    private static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }

    private static void WriteTag(Stream s, int field, int wireType) => WriteVarint(s, (ulong)(field << 3 | wireType));

    private static void WriteVarintField(Stream s, int field, ulong v) { WriteTag(s, field, 0); WriteVarint(s, v); }

    private static void WriteBytes(Stream s, int field, byte[] bytes) { WriteTag(s, field, 2); WriteVarint(s, (ulong)bytes.Length); s.Write(bytes); }

    private static SentencePieceTokenizer Load(int extraIds = 100) =>
        SentencePieceTokenizer.Load(new MemoryStream(TinyUnigramModel()), "tiny.model", extraIds);

    [Fact]
    public void Encodes_with_eos_appended_and_t5_special_ids()
    {
        var tok = Load();
        Assert.Equal((0, 1, 2), (tok.PadId, tok.EosId, tok.UnkId));
        Assert.Equal(Pieces.Length, tok.PieceCount);
        Assert.Equal(Pieces.Length + 100, tok.VocabSize);
        Assert.Equal([3, 4, 5, 1], tok.Encode("a red circle"));
        Assert.Equal([3, 4, 5], tok.Encode("a red circle", addEos: false));
        // Unigram falls back to characters for words without a piece: "▁" + "reds" → ▁red + s.
        Assert.Equal([4, 10, 1], tok.Encode("reds"));
    }

    [Fact]
    public void Decodes_skipping_special_and_sentinel_ids()
    {
        var tok = Load();
        var ids = tok.Encode("a red circle on the left");
        Assert.Equal("a red circle on the left", tok.Decode(ids));
        Assert.Equal("a red circle", tok.Decode([0, 3, 4, 5, 1, 0, 0]));
        Assert.Equal("a red", tok.Decode([3, tok.PieceCount + 5, 4])); // <extra_id_N> sentinels have no text
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([tok.VocabSize]));
    }

    [Fact]
    public void Bpe_and_byte_fallback_models_are_refused_by_name()
    {
        // A second trainer_spec overrides single fields (protobuf merges repeated sub-messages).
        static byte[] With(int field, ulong value)
        {
            using var t = new MemoryStream();
            WriteVarintField(t, field, value);
            using var m = new MemoryStream();
            m.Write(TinyUnigramModel());
            WriteBytes(m, 2, t.ToArray());
            return m.ToArray();
        }
        var bpe = Assert.Throws<InvalidDataException>(() => SentencePieceTokenizer.Load(new MemoryStream(With(3, 2)), "bpe.model"));
        Assert.Contains("bpe.model", bpe.Message);
        Assert.Contains("not unigram", bpe.Message);
        var bytes = Assert.Throws<InvalidDataException>(() => SentencePieceTokenizer.Load(new MemoryStream(With(35, 1)), "bytes.model"));
        Assert.Contains("byte_fallback", bytes.Message);
    }

    [Fact]
    public void Missing_or_corrupt_model_file_errors_name_it()
    {
        using var f = new DataTestFiles();
        var missing = Path.Combine(f.Dir, "spiece.model");
        Assert.Contains(missing, Assert.Throws<FileNotFoundException>(() => SentencePieceTokenizer.Load(missing)).Message);
        var corrupt = f.Write("corrupt.model", "definitely not a protobuf \u0001\u0002");
        Assert.Contains(corrupt, Assert.Throws<InvalidDataException>(() => SentencePieceTokenizer.Load(corrupt)).Message);
        var empty = f.Write("empty.model", "");
        Assert.Contains("no pieces", Assert.Throws<InvalidDataException>(() => SentencePieceTokenizer.Load(empty)).Message);
        var path = Path.Combine(f.Dir, "ok.model");
        File.WriteAllBytes(path, TinyUnigramModel());
        Assert.Equal([3, 1], SentencePieceTokenizer.Load(path).Encode("a"));
    }
}
