using System.Text.Json;
using Scst.Model.Tokenization;

namespace Scst.Model.Tests;

/// <summary>
/// SentencePieceTokenizer against sentencepiece 0.1.97 itself (tests/data/spiece/make_oracle.py): every held-out
/// string's ids, pieces and decode, and decode of id sequences mixed with control and unknown ids, on four models
/// (T5's layout with nmt_nfkc; user-defined symbols + nfkc_cf + extra whitespace kept; identity without dummy
/// prefix; the captions-only stand-in embedded for the XL folder).
/// </summary>
public class SentencePieceOracleTests
{
    private static string DataPath(string file) => Path.Combine(AppContext.BaseDirectory, "data", "spiece", file);

    internal static string[] Strings() => JsonSerializer.Deserialize<string[]>(File.ReadAllText(DataPath("oracle_strings.json")))!;

    internal sealed record Expected(int[] ids, string[] pieces, string decode);

    private sealed record DecodeCase(int[] ids, string decode);

    public static TheoryData<string> Models => new() { "t5_oracle_unigram", "variant_udsym_nfkc_cf", "variant_identity", "t5_style_unigram" };

    [Theory]
    [MemberData(nameof(Models))]
    public void Ids_pieces_and_decode_equal_sentencepiece_on_every_oracle_string(string model)
    {
        var tok = SentencePieceTokenizer.Load(DataPath(model + ".model"));
        var strings = Strings();
        var expected = JsonSerializer.Deserialize<Expected[]>(File.ReadAllText(DataPath($"expected_{model}.json")))!;
        Assert.Equal(strings.Length, expected.Length);
        var failures = new List<string>();
        for (var i = 0; i < strings.Length; i++)
        {
            var (ids, pieces) = tok.EncodeWithPieces(strings[i]);
            var decode = tok.DecodeSentencePiece(expected[i].ids);
            var withEos = tok.Encode(strings[i]);
            if (!ids.SequenceEqual(expected[i].ids) || !pieces.SequenceEqual(expected[i].pieces) || decode != expected[i].decode
                || !withEos.SequenceEqual([.. expected[i].ids, tok.EosId]))
                failures.Add($"#{i} {JsonSerializer.Serialize(strings[i])}: ids [{string.Join(",", ids)}] vs [{string.Join(",", expected[i].ids)}], " +
                             $"pieces {JsonSerializer.Serialize(pieces)} vs {JsonSerializer.Serialize(expected[i].pieces)}, decode {JsonSerializer.Serialize(decode)} vs {JsonSerializer.Serialize(expected[i].decode)}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {strings.Length} differ:\n" + string.Join("\n", failures.Take(15)));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Decode_of_ids_mixed_with_control_and_unknown_ids_equals_sentencepiece(string model)
    {
        var tok = SentencePieceTokenizer.Load(DataPath(model + ".model"));
        var cases = JsonSerializer.Deserialize<DecodeCase[]>(File.ReadAllText(DataPath($"decode_cases_{model}.json")))!;
        Assert.True(cases.Length > 200);
        foreach (var c in cases)
            Assert.True(c.decode == tok.DecodeSentencePiece(c.ids), $"[{string.Join(",", c.ids)}]: {JsonSerializer.Serialize(tok.DecodeSentencePiece(c.ids))} vs {JsonSerializer.Serialize(c.decode)}");
    }

    [Fact]
    public void Empty_and_deleted_only_text_encode_to_eos_alone()
    {
        var tok = SentencePieceTokenizer.Load(DataPath("t5_oracle_unigram.model"));
        Assert.Equal([1], tok.Encode(""));
        Assert.Equal([1], tok.Encode("   \t\n"));
        Assert.Equal([1], tok.Encode("\u0001\u200b")); // nmt_nfkc deletes both
        Assert.Empty(tok.Encode("", addEos: false));
    }

    [Fact]
    public void Special_tokens_decode_by_their_names_when_kept_and_vanish_when_skipped()
    {
        var tok = SentencePieceTokenizer.Load(DataPath("t5_oracle_unigram.model"));
        Assert.Equal((0, 1, 2), (tok.PadId, tok.EosId, tok.UnkId));
        Assert.Equal(("<pad>", "</s>", "<unk>"), (tok.IdToPiece(0), tok.IdToPiece(1), tok.IdToPiece(2)));
        var words = tok.Encode("a red circle", addEos: false);
        int[] withSpecials = [0, .. words, 1, 0];
        Assert.Equal("<pad> a red circle</s><pad>", tok.Decode(withSpecials, skipSpecialTokens: false));
        Assert.Equal("a red circle", tok.Decode(withSpecials));
        Assert.Equal("a red circle", tok.DecodeSentencePiece(withSpecials)); // controls are invisible, no leading space
        int[] withUnk = [.. words[..1], 2, .. words[1..]];
        Assert.Equal("a<unk>red circle", tok.Decode(withUnk, skipSpecialTokens: false)); // HF: each run is decoded alone, so "▁red" loses its space
        Assert.Equal("a red circle", tok.Decode(withUnk));
        Assert.Equal("a \u2047  red circle", tok.DecodeSentencePiece(withUnk));
    }

    [Fact]
    public void Hf_sentinel_ids_after_the_pieces_count_in_the_vocabulary_and_are_dropped_by_decode()
    {
        var tok = SentencePieceTokenizer.Load(DataPath("t5_oracle_unigram.model"));
        Assert.Equal(tok.PieceCount + 100, tok.VocabSize);
        Assert.Equal("<extra_id_0>", tok.IdToPiece(tok.VocabSize - 1));
        Assert.Equal("<extra_id_99>", tok.IdToPiece(tok.PieceCount));
        var words = tok.Encode("two dogs", addEos: false);
        Assert.Equal("two dogs", tok.Decode([tok.PieceCount + 3, .. words, tok.VocabSize - 1, 1]));
        Assert.Throws<ArgumentException>(() => tok.Decode([tok.PieceCount], skipSpecialTokens: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([tok.VocabSize]));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.DecodeSentencePiece([tok.PieceCount]));
    }

    [Fact]
    public void Encoding_from_several_threads_gives_the_same_ids()
    {
        var tok = SentencePieceTokenizer.Load(DataPath("t5_oracle_unigram.model"));
        var strings = Strings();
        var single = strings.Select(s => tok.Encode(s)).ToArray();
        var parallel = new int[strings.Length][];
        Parallel.For(0, strings.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => parallel[i] = tok.Encode(strings[i]));
        for (var i = 0; i < strings.Length; i++) Assert.Equal(single[i], parallel[i]);
    }
}
