using System.Buffers;
using System.Buffers.Binary;

namespace Scst.Model.Tokenization;

/// <summary>
/// sentencepiece's <c>normalizer::Normalizer</c> on UTF-8 bytes: the model's precompiled charsmap (a darts-clone
/// double-array trie whose values point into a blob of NUL-terminated replacements) rewrites the longest matching
/// prefix at each step; user-defined symbols pass through untouched; then the whitespace rules of the
/// normalizer_spec (drop leading, repeated and trailing spaces, the dummy prefix, spaces escaped as U+2581).
/// </summary>
internal sealed class SentencePieceNormalizer
{
    private static ReadOnlySpan<byte> SpaceSymbol => "\u2581"u8;
    private static ReadOnlySpan<byte> ReplacementChar => "\uFFFD"u8;

    private readonly uint[]? _darts;
    private readonly byte[] _replacements = [];
    private readonly ByteTrie? _userDefined;
    private readonly bool _addDummyPrefix, _removeExtraWhitespaces, _escapeWhitespaces, _whitespaceAsSuffix;

    public SentencePieceNormalizer(SentencePieceModelProto model, ByteTrie? userDefined)
    {
        _addDummyPrefix = model.AddDummyPrefix;
        _removeExtraWhitespaces = model.RemoveExtraWhitespaces;
        _escapeWhitespaces = model.EscapeWhitespaces;
        _whitespaceAsSuffix = model.TreatWhitespaceAsSuffix;
        _userDefined = userDefined is { IsEmpty: false } ? userDefined : null;
        var blob = model.PrecompiledCharsmap;
        if (blob.Length == 0) return;
        // <trie size: uint32 LE><double array: uint32 LE units><NUL-terminated replacement strings>
        if (blob.Length <= 4) throw new InvalidDataException("the normalizer's precompiled_charsmap is broken (no trie).");
        var trieSize = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieSize >= (uint)blob.Length - 4 || trieSize % 4 != 0)
            throw new InvalidDataException($"the normalizer's precompiled_charsmap is broken (trie of {trieSize} bytes in a blob of {blob.Length}).");
        _darts = new uint[trieSize / 4];
        for (var i = 0; i < _darts.Length; i++) _darts[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + 4 * i));
        _replacements = blob[(4 + (int)trieSize)..];
    }

    /// <summary>Normalizes <paramref name="input"/> into <paramref name="output"/> (cleared first).</summary>
    public void Normalize(ReadOnlySpan<byte> input, ref ByteBuffer output)
    {
        output.Length = 0;
        if (input.IsEmpty) return;
        var pos = 0;
        if (_removeExtraWhitespaces)
            while (pos < input.Length)
            {
                var n = NormalizePrefix(input[pos..], out var sp);
                if (sp.Length != 1 || sp[0] != (byte)' ') break;
                pos += n;
            }
        if (pos == input.Length) return;

        var space = _escapeWhitespaces ? SpaceSymbol : " "u8;
        if (!_whitespaceAsSuffix && _addDummyPrefix) output.Append(space);
        var isPrevSpace = _removeExtraWhitespaces;
        while (pos < input.Length)
        {
            var consumed = NormalizePrefix(input[pos..], out var sp);
            if (isPrevSpace)
                while (!sp.IsEmpty && sp[0] == (byte)' ') sp = sp[1..];
            if (!sp.IsEmpty)
            {
                var endsWithSpace = sp[^1] == (byte)' ';
                if (_escapeWhitespaces)
                {
                    int at;
                    while ((at = sp.IndexOf((byte)' ')) >= 0)
                    {
                        output.Append(sp[..at]);
                        output.Append(SpaceSymbol);
                        sp = sp[(at + 1)..];
                    }
                }
                output.Append(sp);
                isPrevSpace = endsWithSpace;
            }
            pos += consumed;
            if (!_removeExtraWhitespaces) isPrevSpace = false;
        }
        if (_removeExtraWhitespaces)
            while (output.Span.EndsWith(space)) output.Length -= space.Length;
        if (_whitespaceAsSuffix && _addDummyPrefix) output.Append(space);
    }

    /// <summary>
    /// sentencepiece's <c>NormalizePrefix</c>: the replacement of the longest rule matching the start of
    /// <paramref name="input"/> (a user-defined symbol as itself), else its first character unchanged; returns the
    /// bytes consumed.
    /// </summary>
    private int NormalizePrefix(ReadOnlySpan<byte> input, out ReadOnlySpan<byte> result)
    {
        if (_userDefined is not null)
        {
            var m = _userDefined.LongestPrefix(input);
            if (m > 0) { result = input[..m]; return m; }
        }
        if (_darts is not null)
        {
            var (length, value) = LongestRule(input);
            if (length > 0)
            {
                var rest = value < _replacements.Length ? _replacements.AsSpan(value) : default;
                var end = rest.IndexOf((byte)0);
                result = end < 0 ? rest : rest[..end];
                return length;
            }
        }
        var len = Utf8CharLength(input);
        if (len == 0) { result = ReplacementChar; return 1; } // malformed UTF-8: U+FFFD for one byte, as sentencepiece
        result = input[..len];
        return len;
    }

    /// <summary>darts-clone's <c>commonPrefixSearch</c>, keeping the longest match (its length and value).</summary>
    private (int Length, int Value) LongestRule(ReadOnlySpan<byte> key)
    {
        var a = _darts!;
        int bestLength = 0, bestValue = 0;
        uint nodePos = Offset(a[0]);
        for (var i = 0; i < key.Length; i++)
        {
            nodePos ^= key[i];
            if (nodePos >= (uint)a.Length) break;
            var unit = a[nodePos];
            if ((unit & ((1u << 31) | 0xFF)) != key[i]) break;
            nodePos ^= Offset(unit);
            if (((unit >> 8) & 1) == 1 && nodePos < (uint)a.Length)
            {
                bestLength = i + 1;
                bestValue = (int)(a[nodePos] & ((1u << 31) - 1));
            }
        }
        return (bestLength, bestValue);
    }

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);

    /// <summary>Length of the UTF-8 character at the start of <paramref name="s"/>, or 0 when it is malformed.</summary>
    internal static int Utf8CharLength(ReadOnlySpan<byte> s)
    {
        var b = s[0];
        if (b < 0x80) return 1;
        int len, min;
        uint cp;
        if ((b & 0xE0) == 0xC0) { len = 2; cp = b & 0x1Fu; min = 0x80; }
        else if ((b & 0xF0) == 0xE0) { len = 3; cp = b & 0x0Fu; min = 0x800; }
        else if ((b & 0xF8) == 0xF0) { len = 4; cp = b & 0x07u; min = 0x10000; }
        else return 0;
        if (s.Length < len) return 0;
        for (var i = 1; i < len; i++)
        {
            if ((s[i] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return 0;
        return len;
    }
}

/// <summary>A growable byte buffer on pooled arrays; <see cref="Dispose"/> returns the array.</summary>
internal struct ByteBuffer(int capacity) : IDisposable
{
    private byte[] _array = ArrayPool<byte>.Shared.Rent(Math.Max(16, capacity));
    public int Length;

    public readonly ReadOnlySpan<byte> Span => _array.AsSpan(0, Length);

    public void Append(ReadOnlySpan<byte> bytes)
    {
        if (Length + bytes.Length > _array.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_array.Length * 2, Length + bytes.Length));
            _array.AsSpan(0, Length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_array);
            _array = bigger;
        }
        bytes.CopyTo(_array.AsSpan(Length));
        Length += bytes.Length;
    }

    public void Dispose()
    {
        if (_array.Length > 0) ArrayPool<byte>.Shared.Return(_array);
        _array = [];
        Length = 0;
    }
}
