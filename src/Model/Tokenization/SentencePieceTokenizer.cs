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
            inner = Ml.SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{source}: not a readable SentencePiece model ({e.GetType().Name}: {e.Message}).", e);
        }
        var vocab = inner.Vocabulary;
        if (!vocab.TryGetValue("<pad>", out var pad))
            throw new InvalidDataException($"{source}: the model has no '<pad>' piece; T5 models define <pad> = 0.");
        return new SentencePieceTokenizer(inner, pad, vocab.Count, extraIds);
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
}
