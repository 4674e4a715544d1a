using Scst.Model;
using Scst.Model.Tokenization;

namespace Scst.Model.Tests;

public class TokenizerWordTests
{
    private static readonly string[] Corpus =
    [
        "A red circle.", "a RED square on the left", "A blue circle!", "a red circle", "There's a (tiny) box",
    ];

    [Fact]
    public void Build_orders_by_frequency_and_applies_threshold()
    {
        var tok = WordTokenizer.Build(Corpus, minCount: 2);
        Assert.Equal(["<pad>", "</s>", "<unk>", "a", "circle", "red"], tok.Vocabulary);
        Assert.Equal((0, 1, 2, 0), (tok.PadId, tok.EosId, tok.UnkId, ((ICaptionTokenizer)tok).DecoderStartId));
        Assert.Equal([3, 5, 4, 1], tok.Encode("A red circle."));
        Assert.Equal([3, 2, 4, 1], tok.Encode("a blue circle"));    // below threshold → unk
        Assert.Equal([3, 2, 4], tok.Encode("a blue circle", addEos: false));
    }

    [Fact]
    public void Round_trip_of_normalised_text_and_special_skipping()
    {
        var tok = WordTokenizer.Build(Corpus);
        foreach (var text in new[] { "a red square on the left", "there's a tiny box" })
            Assert.Equal(text, tok.Decode(tok.Encode(text)));
        Assert.Equal("a red circle", tok.Decode(tok.Encode("  A red,circle!! ")));
        Assert.Equal("<pad> a </s>", tok.Decode([0, tok.Encode("a")[0], 1], skipSpecialTokens: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([tok.VocabSize]));
    }

    [Fact]
    public void Words_match_what_the_reward_sees_after_dropping_punctuation()
    {
        Assert.Equal(["a", "man's", "hat", "on", "a", "t", "shirt"], WordTokenizer.Words("A man's hat, on a T-shirt."));
    }

    [Fact]
    public void Save_load_round_trip_and_bad_files()
    {
        using var f = new DataTestFiles();
        var tok = WordTokenizer.Build(Corpus, minCount: 1);
        var path = Path.Combine(f.Dir, "vocab.json");
        tok.Save(path);
        var back = WordTokenizer.Load(path);
        Assert.Equal(tok.Vocabulary, back.Vocabulary);
        Assert.Equal(tok.Encode("a tiny blue box"), back.Encode("a tiny blue box"));

        var cases = new (string Content, string Expected)[]
        {
            ("{", "not valid JSON"),
            ("[]", "not a word tokenizer file"),
            ("{\"format\": \"scst-word-tokenizer\"}", "'vocab' is missing"),
            ("{\"format\": \"scst-word-tokenizer\", \"vocab\": [\"<pad>\", \"</s>\", \"<unk>\", 3]}", "vocab[3] should be a string"),
            ("{\"format\": \"scst-word-tokenizer\", \"vocab\": [\"</s>\", \"<pad>\", \"<unk>\"]}", "must start with <pad>"),
            ("{\"format\": \"scst-word-tokenizer\", \"vocab\": [\"<pad>\", \"</s>\", \"<unk>\", \"a\", \"a\"]}", "'a' more than once"),
        };
        foreach (var (content, expected) in cases)
        {
            var bad = f.Write("bad.json", content);
            var e = Assert.Throws<InvalidDataException>(() => WordTokenizer.Load(bad));
            Assert.Contains(bad, e.Message);
            Assert.Contains(expected, e.Message);
        }
    }

    [Fact]
    public void Batch_encoding_pads_and_keeps_eos_when_truncating()
    {
        TorchRuntime.Initialize();
        var tok = WordTokenizer.Build(Corpus);
        var (ids, mask) = tok.EncodeBatch(["a red circle on the left", "a box"], maxLength: 4);
        Assert.Equal(new long[] { 2, 4 }, ids.shape);
        var a = tok.Encode("a red circle");
        Assert.Equal(new long[] { a[0], a[1], a[2], 1, tok.Encode("a")[0], tok.Encode("box")[0], 1, 0 }, ids.data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 1, 0 }, mask.data<long>().ToArray());
    }
}
