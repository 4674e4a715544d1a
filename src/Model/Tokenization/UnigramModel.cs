using System.Buffers;

namespace Scst.Model.Tokenization;

/// <summary>One token of an encoding: bytes [Start, Start + Length) of the normalized text and its piece id.</summary>
internal readonly record struct SpToken(int Start, int Length, int Id);

/// <summary>
/// sentencepiece's unigram <c>Model::EncodeOptimized</c> (the default encoder of 0.1.97): the best-scoring
/// segmentation of the normalized text, found left to right over UTF-8 positions. Its arithmetic is kept as
/// sentencepiece compiles it, since ties (<c>555</c>, <c>www</c>) are decided by it: a piece's score is widened to
/// double and added to the float best score so far, compared in double against the float kept at the end
/// position, and stored back as float; an earlier candidate wins an exact tie; a character no piece of its own
/// length covers gets the unknown id with score min_score − 10 (float arithmetic); user-defined pieces score
/// length × max_score − 0.1 so they are always chosen; unused pieces are never chosen.
/// </summary>
internal sealed class UnigramModel
{
    private const float UnkPenalty = 10f;

    private readonly ByteTrie _trie;
    private readonly float[] _scores;
    private readonly PieceType[] _types;
    private readonly int _unkId;
    private readonly float _minScore, _maxScore;

    public UnigramModel(ByteTrie trie, IReadOnlyList<(string Piece, float Score, PieceType Type)> pieces, int unkId)
    {
        _trie = trie;
        _unkId = unkId;
        _scores = new float[pieces.Count];
        _types = new PieceType[pieces.Count];
        // As sentencepiece: FLT_MAX / FLT_MIN (the smallest positive float) over NORMAL pieces only.
        _minScore = float.MaxValue;
        _maxScore = 1.17549435E-38f;
        for (var i = 0; i < pieces.Count; i++)
        {
            _scores[i] = pieces[i].Score;
            _types[i] = pieces[i].Type;
            if (pieces[i].Type != PieceType.Normal) continue;
            _minScore = Math.Min(_minScore, pieces[i].Score);
            _maxScore = Math.Max(_maxScore, pieces[i].Score);
        }
    }

    /// <summary>Appends the tokens of <paramref name="normalized"/> to <paramref name="tokens"/>, in order.</summary>
    public void Encode(ReadOnlySpan<byte> normalized, List<SpToken> tokens)
    {
        var size = normalized.Length;
        if (size == 0) return;
        var scorePool = ArrayPool<float>.Shared.Rent(size + 1);
        var startPool = ArrayPool<int>.Shared.Rent(size + 1);
        var idPool = ArrayPool<int>.Shared.Rent(size + 1);
        try
        {
            var bestScore = scorePool.AsSpan(0, size + 1);
            var startsAt = startPool.AsSpan(0, size + 1);
            var bestId = idPool.AsSpan(0, size + 1);
            bestScore.Clear();
            startsAt.Fill(-1);
            var unkScore = _minScore - UnkPenalty;
            var start = 0;
            while (start < size)
            {
                var tillHere = bestScore[start];
                var hasSingleNode = false;
                var charLen = Math.Min(OneCharLen(normalized[start]), size - start);
                var node = ByteTrie.Root;
                for (var key = start; key < size;)
                {
                    node = _trie.Child(node, normalized[key]);
                    if (node < 0) break;
                    key++;
                    var id = _trie.Value(node);
                    if (id < 0 || _types[id] == PieceType.Unused) continue;
                    var length = key - start;
                    double score = _types[id] == PieceType.UserDefined
                        ? (double)(float)(length * _maxScore) - 0.1
                        : _scores[id];
                    var candidate = score + tillHere;
                    if (startsAt[key] == -1 || candidate > bestScore[key])
                    {
                        bestScore[key] = (float)candidate;
                        startsAt[key] = start;
                        bestId[key] = id;
                    }
                    if (length == charLen) hasSingleNode = true;
                }
                if (!hasSingleNode)
                {
                    var end = start + charLen;
                    var candidate = unkScore + tillHere;
                    if (startsAt[end] == -1 || candidate > bestScore[end])
                    {
                        bestScore[end] = candidate;
                        startsAt[end] = start;
                        bestId[end] = _unkId;
                    }
                }
                start += charLen;
            }
            var first = tokens.Count;
            for (var end = size; end > 0; end = startsAt[end])
                tokens.Add(new SpToken(startsAt[end], end - startsAt[end], bestId[end]));
            tokens.Reverse(first, tokens.Count - first);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scorePool);
            ArrayPool<int>.Shared.Return(startPool);
            ArrayPool<int>.Shared.Return(idPool);
        }
    }

    /// <summary>sentencepiece's <c>OneCharLen</c>: the length a UTF-8 lead byte announces (1 for stray trail bytes).</summary>
    private static int OneCharLen(byte lead) => (lead >> 4) switch { < 12 => 1, 12 or 13 => 2, 14 => 3, _ => 4 };
}
