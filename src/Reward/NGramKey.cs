using System.Runtime.CompilerServices;

namespace Scst.Reward;

/// <summary>
/// An n-gram (n = 1..4) of token ids packed exactly into 128 bits: each slot holds id + 1, so 0 means
/// "no token" and n-grams of different orders can never collide. Exact keys (rather than a hash of
/// the n-gram) keep the scores identical to pycocoevalcap's tuple-keyed dictionaries.
/// </summary>
public readonly record struct NGramKey(ulong Lo, ulong Hi)
{
    public const int MaxOrder = 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NGramKey Of(ReadOnlySpan<int> tokens)
    {
        ulong t0 = tokens.Length > 0 ? (uint)tokens[0] + 1UL : 0, t1 = tokens.Length > 1 ? (uint)tokens[1] + 1UL : 0;
        ulong t2 = tokens.Length > 2 ? (uint)tokens[2] + 1UL : 0, t3 = tokens.Length > 3 ? (uint)tokens[3] + 1UL : 0;
        return new NGramKey(t0 | (t1 << 32), t2 | (t3 << 32));
    }

    public int Order => Hi != 0 ? ((Hi >> 32) != 0 ? 4 : 3) : ((Lo >> 32) != 0 ? 2 : 1);

    /// <summary>Token id at position i (0-based); the caller checks i &lt; Order.</summary>
    public int Token(int i) => (int)((i switch { 0 => Lo, 1 => Lo >> 32, 2 => Hi, _ => Hi >> 32 }) & 0xFFFFFFFFUL) - 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Hash(ulong lo, ulong hi)
    {
        ulong h = (lo * 0x9E3779B97F4A7C15UL) ^ ((hi + 0x632BE59BD9B4E019UL) * 0xC2B2AE3D27D4EB4FUL);
        h ^= h >> 31;
        h *= 0xD6E8FEB86659FD93UL;
        h ^= h >> 32;
        return h;
    }
}

/// <summary>Open-addressing map from <see cref="NGramKey"/> to an int (document frequency). Not thread-safe for writes.</summary>
public sealed class NGramCountMap
{
    private ulong[] _lo, _hi;
    private int[] _val;
    private int _mask, _count;

    public NGramCountMap(int capacity = 1024)
    {
        int size = 16;
        while (size < capacity * 2) size <<= 1;
        _lo = new ulong[size]; _hi = new ulong[size]; _val = new int[size];
        _mask = size - 1;
    }

    public int Count => _count;

    /// <summary>Adds delta to the key's value (inserting it at 0 first).</summary>
    public void Add(ulong lo, ulong hi, ulong hash, int delta)
    {
        int i = (int)(hash & (ulong)_mask);
        while (true)
        {
            ulong k = _lo[i];
            if (k == 0)
            {
                _lo[i] = lo; _hi[i] = hi; _val[i] = delta;
                if (++_count * 2 > _mask) Grow();
                return;
            }
            if (k == lo && _hi[i] == hi) { _val[i] += delta; return; }
            i = (i + 1) & _mask;
        }
    }

    public void Add(NGramKey key, int delta) => Add(key.Lo, key.Hi, NGramKey.Hash(key.Lo, key.Hi), delta);

    /// <summary>The key's value, 0 when absent. Safe to call from many threads once writes have stopped.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Get(ulong lo, ulong hi, ulong hash)
    {
        int i = (int)(hash & (ulong)_mask);
        while (true)
        {
            ulong k = _lo[i];
            if (k == 0) return 0;
            if (k == lo && _hi[i] == hi) return _val[i];
            i = (i + 1) & _mask;
        }
    }

    public int Get(NGramKey key) => Get(key.Lo, key.Hi, NGramKey.Hash(key.Lo, key.Hi));

    public IEnumerable<(NGramKey Key, int Value)> Entries()
    {
        for (int i = 0; i <= _mask; i++)
            if (_lo[i] != 0) yield return (new NGramKey(_lo[i], _hi[i]), _val[i]);
    }

    private void Grow()
    {
        var (lo, hi, val) = (_lo, _hi, _val);
        int size = (_mask + 1) * 2;
        _lo = new ulong[size]; _hi = new ulong[size]; _val = new int[size];
        _mask = size - 1;
        for (int j = 0; j < lo.Length; j++)
        {
            if (lo[j] == 0) continue;
            int i = (int)(NGramKey.Hash(lo[j], hi[j]) & (ulong)_mask);
            while (_lo[i] != 0) i = (i + 1) & _mask;
            _lo[i] = lo[j]; _hi[i] = hi[j]; _val[i] = val[j];
        }
    }
}
