using System.Runtime.CompilerServices;

namespace Scst.Reward;

/// <summary>
/// Per-thread scratch that turns the sentences of one image (candidates and references) into n-gram
/// counts over image-local dense ids. It plays the role of pycocoevalcap's <c>precook</c>: each
/// sentence's entries are its distinct n-grams, grouped by order 1..4 and in order of first
/// occurrence, exactly the insertion order of the Python dict, so float sums run in the same order.
/// All buffers are reused between images; nothing is allocated once they have grown.
/// </summary>
internal sealed class ImageCooker
{
    // Local open-addressing table: key -> local id.
    private ulong[] _tLo = new ulong[512], _tHi = new ulong[512];
    private int[] _tId = new int[512];
    private int _tMask = 511;
    private int[] _usedSlots = new int[256];

    // Per local id.
    public ulong[] KeyLo = new ulong[256], KeyHi = new ulong[256], KeyHash = new ulong[256];
    public int LocalCount;
    private int[] _stamp = new int[256];   // sentence index + 1 that last touched the id
    private int[] _stampEntry = new int[256];

    // Sentence entries: (local id, count), sentence s's order-n entries are [OrderStart[5s+n-1], OrderStart[5s+n]).
    public int[] EntryLocal = new int[1024], EntryCount = new int[1024];
    public int EntryTotal;
    public int[] OrderStart = new int[5 * 16];
    public int[] Length = new int[16];     // number of tokens (EOS included when appended)
    public int SentenceCount;

    private int[] _tokBuf = new int[64];

    public void Reset()
    {
        for (int i = 0; i < LocalCount; i++) _tLo[_usedSlots[i]] = 0;
        LocalCount = 0;
        EntryTotal = 0;
        SentenceCount = 0;
    }

    /// <summary>Adds a sentence and returns its index. <paramref name="eos"/> &gt;= 0 appends that token.</summary>
    public int AddSentence(ReadOnlySpan<int> tokens, int eos)
    {
        int s = SentenceCount++;
        if (5 * s + 5 > OrderStart.Length) Array.Resize(ref OrderStart, OrderStart.Length * 2);
        if (s >= Length.Length) Array.Resize(ref Length, Length.Length * 2);
        if (eos >= 0)
        {
            int len = tokens.Length + 1;
            if (_tokBuf.Length < len) _tokBuf = new int[Math.Max(len, _tokBuf.Length * 2)];
            tokens.CopyTo(_tokBuf);
            _tokBuf[tokens.Length] = eos;
            tokens = new ReadOnlySpan<int>(_tokBuf, 0, len);
        }
        int T = tokens.Length;
        Length[s] = T;
        int need = EntryTotal + 4 * T;
        if (need > EntryLocal.Length)
        {
            int size = Math.Max(need, EntryLocal.Length * 2);
            Array.Resize(ref EntryLocal, size);
            Array.Resize(ref EntryCount, size);
        }
        int stampValue = s + 1;
        for (int n = 1; n <= NGramKey.MaxOrder; n++)
        {
            OrderStart[5 * s + n - 1] = EntryTotal;
            for (int i = 0; i + n <= T; i++)
            {
                ulong t0 = (uint)tokens[i] + 1UL;
                ulong lo = n > 1 ? t0 | (((uint)tokens[i + 1] + 1UL) << 32) : t0;
                ulong hi = n > 2 ? ((uint)tokens[i + 2] + 1UL) | (n > 3 ? ((uint)tokens[i + 3] + 1UL) << 32 : 0) : 0;
                int id = Intern(lo, hi);
                if (_stamp[id] == stampValue)
                {
                    EntryCount[_stampEntry[id]]++;
                }
                else
                {
                    _stamp[id] = stampValue;
                    _stampEntry[id] = EntryTotal;
                    EntryLocal[EntryTotal] = id;
                    EntryCount[EntryTotal] = 1;
                    EntryTotal++;
                }
            }
        }
        OrderStart[5 * s + 4] = EntryTotal;
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Intern(ulong lo, ulong hi)
    {
        ulong h = NGramKey.Hash(lo, hi);
        int i = (int)(h & (ulong)_tMask);
        while (true)
        {
            ulong k = _tLo[i];
            if (k == 0) break;
            if (k == lo && _tHi[i] == hi) return _tId[i];
            i = (i + 1) & _tMask;
        }
        int id = LocalCount++;
        if (id >= KeyLo.Length) GrowLocal();
        _tLo[i] = lo; _tHi[i] = hi; _tId[i] = id;
        _usedSlots[id] = i;
        KeyLo[id] = lo; KeyHi[id] = hi; KeyHash[id] = h;
        // A fresh id must not inherit a stamp from an earlier image.
        _stamp[id] = 0;
        if (LocalCount * 2 > _tMask) GrowTable();
        return id;
    }

    private void GrowLocal()
    {
        int size = KeyLo.Length * 2;
        Array.Resize(ref KeyLo, size); Array.Resize(ref KeyHi, size); Array.Resize(ref KeyHash, size);
        Array.Resize(ref _stamp, size); Array.Resize(ref _stampEntry, size); Array.Resize(ref _usedSlots, size);
    }

    private void GrowTable()
    {
        int size = (_tMask + 1) * 2;
        _tLo = new ulong[size]; _tHi = new ulong[size]; _tId = new int[size];
        _tMask = size - 1;
        for (int id = 0; id < LocalCount; id++)
        {
            int i = (int)(KeyHash[id] & (ulong)_tMask);
            while (_tLo[i] != 0) i = (i + 1) & _tMask;
            _tLo[i] = KeyLo[id]; _tHi[i] = KeyHi[id]; _tId[i] = id;
            _usedSlots[id] = i;
        }
    }

    [ThreadStatic] private static ImageCooker? t_instance;
    public static ImageCooker ForThread() => t_instance ??= new ImageCooker();
}
