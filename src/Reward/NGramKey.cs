using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

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

/// <summary>
/// Open-addressing map from <see cref="NGramKey"/> to an int (document frequency). Key and value sit
/// in one 24-byte slot so a lookup in a table of millions of n-grams costs one cache miss, not three.
/// Not thread-safe for writes; reads are safe once writes have stopped. A pooled map (a scratch table
/// of one corpus scoring call) rents its slots from <see cref="ArrayPool{T}.Shared"/> and gives them back
/// on <see cref="Dispose"/>: repeated calls then reuse memory instead of page-faulting in hundreds of MB.
/// </summary>
public sealed class NGramCountMap : IDisposable
{
    private struct Slot
    {
        public ulong Lo, Hi;
        public int Value;
    }

    private Slot[] _slots;
    private int _mask, _count, _limit;
    private readonly bool _pooled;

    /// <summary>A map that holds <paramref name="capacity"/> keys without growing (at most 70 % of its slots in use).</summary>
    public NGramCountMap(int capacity = 1024) : this(capacity, pooled: false) { }

    internal NGramCountMap(int capacity, bool pooled)
    {
        _pooled = pooled;
        int size = 16;
        while (size * 0.7 < capacity) size <<= 1;
        _slots = NewSlots(size);
    }

    private Slot[] NewSlots(int size)
    {
        _mask = size - 1;
        _limit = (int)(size * 0.7);
        if (!_pooled) return new Slot[size];
        var slots = ArrayPool<Slot>.Shared.Rent(size);
        Array.Clear(slots, 0, size);
        return slots;
    }

    public void Dispose()
    {
        if (_pooled && _slots.Length > 0) ArrayPool<Slot>.Shared.Return(_slots);
        _slots = [];
    }

    public int Count => _count;

    /// <summary>
    /// The key's slot, or the free slot where it would go (linear probing from its hash). A free slot is all
    /// zeros: no key has Lo = 0 (token ids are stored + 1), and its Value reads as 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref Slot Find(ulong lo, ulong hi, ulong hash)
    {
        var slots = _slots;
        int i = (int)(hash & (ulong)_mask);
        while (true)
        {
            ref var s = ref slots[i];
            if ((s.Lo == lo && s.Hi == hi) || s.Lo == 0) return ref s;
            i = (i + 1) & _mask;
        }
    }

    /// <summary>Adds delta to the key's value (inserting it at 0 first).</summary>
    public void Add(ulong lo, ulong hi, ulong hash, int delta)
    {
        ref var s = ref Find(lo, hi, hash);
        if (s.Lo != 0) { s.Value += delta; return; }
        s.Lo = lo; s.Hi = hi; s.Value = delta;
        if (++_count > _limit) Grow();
    }

    /// <summary>
    /// The key's id: its value when present; otherwise it is inserted with the value <see cref="Count"/>
    /// (ids 0, 1, 2, … in insertion order). A map used this way must not also be used with <see cref="Add(ulong, ulong, ulong, int)"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int GetOrAddId(ulong lo, ulong hi, ulong hash)
    {
        ref var s = ref Find(lo, hi, hash);
        if (s.Lo != 0) return s.Value;
        int id = _count;
        s.Lo = lo; s.Hi = hi; s.Value = id;
        if (++_count > _limit) Grow();
        return id;
    }

    /// <summary>
    /// Asks the CPU to start loading the key's home slot. A table of millions of n-grams does not fit
    /// in cache, so lookups are memory-latency bound; issuing the next few loads early overlaps them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void Prefetch(ulong hash)
    {
        if (!Sse.IsSupported) return;
        ref var slot = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slots), (nint)(hash & (ulong)_mask));
        Sse.Prefetch0(Unsafe.AsPointer(ref slot));
    }

    public void Add(NGramKey key, int delta) => Add(key.Lo, key.Hi, NGramKey.Hash(key.Lo, key.Hi), delta);

    /// <summary>The key's value, 0 when absent.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Get(ulong lo, ulong hi, ulong hash) => Find(lo, hi, hash).Value;

    public int Get(NGramKey key) => Get(key.Lo, key.Hi, NGramKey.Hash(key.Lo, key.Hi));

    public IEnumerable<(NGramKey Key, int Value)> Entries()
    {
        for (int i = 0; i <= _mask; i++)
            if (_slots[i].Lo != 0) yield return (new NGramKey(_slots[i].Lo, _slots[i].Hi), _slots[i].Value);
    }

    private void Grow()
    {
        var old = _slots;
        int oldSize = _mask + 1;
        _slots = NewSlots(oldSize * 2);
        for (int j = 0; j < oldSize; j++)
        {
            var s = old[j];
            if (s.Lo == 0) continue;
            int i = (int)(NGramKey.Hash(s.Lo, s.Hi) & (ulong)_mask);
            while (_slots[i].Lo != 0) i = (i + 1) & _mask;
            _slots[i] = s;
        }
        if (_pooled) ArrayPool<Slot>.Shared.Return(old);
    }
}
