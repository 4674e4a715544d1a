using System.Text;

namespace Scst.Model.Tokenization;

/// <summary>
/// T5's SentencePiece tokenizer, read from <c>spiece.model</c>: sentencepiece 0.1.97's normaliser and unigram
/// encoder re-implemented (<see cref="SentencePieceNormalizer"/>, <see cref="UnigramModel"/>) so that ids, pieces
/// and decoded text equal sentencepiece's on every input (tests/data/spiece holds the oracle). Encoding appends
/// EOS and no BOS, like HF's <c>T5Tokenizer</c>; an empty text is <c>[eos]</c>. HF appends <c>extra_ids</c>
/// sentinels (<c>&lt;extra_id_N&gt;</c>) after the model's pieces: they count in <see cref="VocabSize"/>, are never
/// produced by encoding and are dropped by decoding.
/// </summary>
public sealed class SentencePieceTokenizer : ICaptionTokenizer
{
    private static readonly string SpaceSymbol = "\u2581";

    private readonly string[] _pieces;
    private readonly PieceType[] _types;
    private readonly SentencePieceNormalizer _normalizer;
    private readonly UnigramModel _model;
    private readonly string _unkSurface;
    private readonly bool _stripBosSpace, _removeExtraWhitespaces;

    private SentencePieceTokenizer(SentencePieceModelProto proto, int extraIds)
    {
        if (proto.Pieces.Count == 0) throw new InvalidDataException("the model has no pieces.");
        if (proto.ModelType != 1)
            throw new InvalidDataException($"model_type {proto.ModelType} is not unigram (1); only unigram models such as T5's are supported.");
        if (proto.ByteFallback || proto.Pieces.Any(p => p.Type == PieceType.Byte))
            throw new InvalidDataException("the model uses byte_fallback, which T5's models do not and this tokenizer does not implement.");
        if (proto.HasDenormalizer)
            throw new InvalidDataException("the model has denormalizer rules, which T5's models do not and this tokenizer does not implement.");
        _pieces = proto.Pieces.Select(p => p.Piece).ToArray();
        _types = proto.Pieces.Select(p => p.Type).ToArray();
        var unk = -1;
        var reserved = new HashSet<string>();
        var inTrie = new List<(byte[], int)>();
        var userDefined = new List<(byte[], int)>();
        for (var i = 0; i < _pieces.Length; i++)
        {
            var (piece, _, type) = proto.Pieces[i];
            if (piece.Length == 0) throw new InvalidDataException($"piece {i} is empty.");
            var key = Encoding.UTF8.GetBytes(piece);
            if (type is PieceType.Normal or PieceType.UserDefined or PieceType.Unused) inTrie.Add((key, i));
            else if (!reserved.Add(piece)) throw new InvalidDataException($"piece '{piece}' is defined twice.");
            if (type == PieceType.UserDefined) userDefined.Add((key, i));
            if (type == PieceType.Unknown)
            {
                if (unk >= 0) throw new InvalidDataException("the model defines more than one unknown piece.");
                unk = i;
            }
        }
        if (unk < 0) throw new InvalidDataException("the model defines no unknown piece.");
        var trie = ByteTrie.Build(inTrie, k => throw new InvalidDataException($"piece '{Encoding.UTF8.GetString(k)}' is defined twice."));
        _model = new UnigramModel(trie, proto.Pieces, unk);
        _normalizer = new SentencePieceNormalizer(proto, ByteTrie.Build(userDefined));
        _unkSurface = proto.UnkSurface;
        _removeExtraWhitespaces = proto.RemoveExtraWhitespaces;
        _stripBosSpace = proto.AddDummyPrefix || proto.RemoveExtraWhitespaces;
        UnkId = unk;
        PieceCount = _pieces.Length;
        VocabSize = PieceCount + extraIds;
        PadId = proto.PadId >= 0 && proto.PadId < PieceCount ? proto.PadId
            : throw new InvalidDataException($"the model has no pad piece (pad_id {proto.PadId}); T5 models define <pad> = 0.");
        EosId = proto.EosId >= 0 && proto.EosId < PieceCount ? proto.EosId
            : throw new InvalidDataException($"the model has no eos piece (eos_id {proto.EosId}); T5 models define </s> = 1.");
        NormalizerName = proto.NormalizerName;
    }

    /// <summary>Pieces in the model file; HF T5's vocabulary adds <c>extra_ids</c> sentinels after them.</summary>
    public int PieceCount { get; }
    public int VocabSize { get; }
    public int PadId { get; }
    public int EosId { get; }
    public int UnkId { get; }
    /// <summary>normalizer_spec.name (e.g. <c>nmt_nfkc</c>); the rules themselves come from its precompiled charsmap.</summary>
    public string NormalizerName { get; }

    public static SentencePieceTokenizer Load(string path, int extraIds = 100)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"SentencePiece model '{path}' does not exist.", path);
        using var stream = File.OpenRead(path);
        return Load(stream, path, extraIds);
    }

    public static SentencePieceTokenizer Load(Stream stream, string source, int extraIds = 100)
    {
        try
        {
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            return new SentencePieceTokenizer(SentencePieceModelProto.Parse(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)), extraIds);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{source}: not a usable SentencePiece model ({e.Message})", e);
        }
    }

    /// <summary>The piece of <paramref name="id"/> (<c>&lt;extra_id_N&gt;</c> for HF's sentinels after the model's pieces).</summary>
    public string IdToPiece(int id) =>
        id >= 0 && id < PieceCount ? _pieces[id]
        : id >= PieceCount && id < VocabSize ? $"<extra_id_{VocabSize - 1 - id}>"
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside the vocabulary of {VocabSize}.");

    public bool IsControl(int id) => id >= 0 && id < PieceCount && _types[id] == PieceType.Control;

    public int[] Encode(string text, bool addEos = true)
    {
        var tokens = Tokenize(text, keepNormalized: false, out _);
        var ids = new int[tokens.Count + (addEos ? 1 : 0)];
        for (var i = 0; i < tokens.Count; i++) ids[i] = tokens[i].Id;
        if (addEos) ids[^1] = EosId;
        return ids;
    }

    /// <summary>sentencepiece's <c>encode(text)</c> and <c>encode(text, out_type=str)</c> together (no EOS).</summary>
    public (int[] Ids, string[] Pieces) EncodeWithPieces(string text)
    {
        var tokens = Tokenize(text, keepNormalized: true, out var normalized);
        var ids = new int[tokens.Count];
        var pieces = new string[tokens.Count];
        for (var i = 0; i < tokens.Count; i++)
        {
            ids[i] = tokens[i].Id;
            pieces[i] = Encoding.UTF8.GetString(normalized, tokens[i].Start, tokens[i].Length);
        }
        return (ids, pieces);
    }

    /// <summary>
    /// Normalizes and segments <paramref name="text"/>; runs of unknown tokens are merged into one, as
    /// sentencepiece's <c>PopulateSentencePieceText</c> does (the merged piece is the run's normalized text).
    /// </summary>
    private List<SpToken> Tokenize(string text, bool keepNormalized, out byte[] normalizedCopy)
    {
        var tokens = new List<SpToken>();
        normalizedCopy = [];
        if (text.Length == 0) return tokens;
        var utf8 = System.Buffers.ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(text.Length));
        var normalized = new ByteBuffer(text.Length * 3);
        try
        {
            var n = Encoding.UTF8.GetBytes(text, utf8);
            _normalizer.Normalize(utf8.AsSpan(0, n), ref normalized);
            _model.Encode(normalized.Span, tokens);
            var w = 0;
            for (var r = 0; r < tokens.Count; r++)
            {
                var t = tokens[r];
                if (w > 0 && t.Id == UnkId && tokens[w - 1].Id == UnkId)
                    tokens[w - 1] = tokens[w - 1] with { Length = t.Start + t.Length - tokens[w - 1].Start };
                else tokens[w++] = t;
            }
            tokens.RemoveRange(w, tokens.Count - w);
            if (keepNormalized) normalizedCopy = normalized.Span.ToArray();
            return tokens;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(utf8);
            normalized.Dispose();
        }
    }

    /// <summary>
    /// sentencepiece's <c>decode(ids)</c>: control pieces (pad, eos) are invisible, the unknown piece shows the
    /// model's unk_surface (" ⁇ "), U+2581 becomes a space, and leading U+2581s are dropped, one per piece, until
    /// some text has been written.
    /// </summary>
    public string DecodeSentencePiece(IReadOnlyList<int> ids)
    {
        var text = new StringBuilder();
        var isBosWs = true;
        var bosWsSeen = false;
        foreach (var id in ids)
        {
            if (id < 0 || id >= PieceCount)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside the model's {PieceCount} pieces.");
            if (bosWsSeen || text.Length > 0) isBosWs = false;
            bosWsSeen = false;
            var type = _types[id];
            if (type == PieceType.Control) continue;
            if (type == PieceType.Unknown) { text.Append(_unkSurface); continue; }
            var piece = _pieces[id];
            if (isBosWs && _stripBosSpace && piece.StartsWith(SpaceSymbol, StringComparison.Ordinal))
            {
                piece = piece[SpaceSymbol.Length..];
                bosWsSeen = !_removeExtraWhitespaces;
            }
            text.Append(piece.Replace(SpaceSymbol, " ", StringComparison.Ordinal));
        }
        return text.ToString();
    }

    /// <summary>
    /// HF's <c>T5Tokenizer.decode</c>. With <paramref name="skipSpecialTokens"/>: pad, eos, unk and sentinel ids are
    /// dropped and the rest decoded as sentencepiece does. Without: special pieces show by their names (<c>&lt;pad&gt;</c>,
    /// <c>&lt;/s&gt;</c>, <c>&lt;unk&gt;</c>) between the sentencepiece-decoded runs, a space before each special
    /// that follows text, the whole trimmed, as HF's slow tokenizer's <c>convert_tokens_to_string</c>; sentinels
    /// are refused there since the model has no text for them.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        var list = ids as IReadOnlyList<int> ?? ids.ToList();
        foreach (var id in list)
            if (id < 0 || id >= VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside the vocabulary of {VocabSize}.");
        if (skipSpecialTokens)
            return DecodeSentencePiece(list.Where(id => id < PieceCount && !IsSpecial(id)).ToList());
        if (list.Any(id => id >= PieceCount))
            throw new ArgumentException($"sentinel ids (≥ {PieceCount}) have no text in the SentencePiece model; decode with skipSpecialTokens.", nameof(ids));
        var text = new StringBuilder();
        var run = new List<int>();
        var prevSpecial = false;
        foreach (var id in list)
        {
            if (!IsSpecial(id)) { run.Add(id); prevSpecial = false; continue; }
            if (!prevSpecial) text.Append(' ');
            text.Append(DecodeSentencePiece(run)).Append(_pieces[id]);
            run.Clear();
            prevSpecial = true;
        }
        return text.Append(DecodeSentencePiece(run)).ToString().Trim();
    }

    private bool IsSpecial(int id) => _types[id] is PieceType.Control or PieceType.Unknown;
}
