using System.Runtime.CompilerServices;

namespace Scst.Reward;

/// <summary>
/// Per-thread scratch that turns the sentences of one image (candidates and references) into n-gram
/// counts over image-local dense ids. It plays the role of pycocoevalcap's <c>precook</c>: each
/// sentence's entries are its distinct n-grams, grouped by order 1..4 and in order of first
/// occurrence, exactly the insertion order of the Python dict, so float sums run in the same order.
/// An n-gram of order n is interned as (local id of its first n−1 tokens, last token), so every lookup
/// is one 64-bit key in a table that stays in L1; its exact 128-bit <see cref="NGramKey"/> is built once
/// per distinct n-gram, for the corpus-wide tables. Buffers are reused: nothing is allocated once they have grown.
/// </summary>
internal sealed class ImageCooker
{
    // Unigrams: token id -> local id, valid while _tokenEpoch[token] == _epoch (no clearing between images).
    private int[] _tokenLocal = new int[1024], _tokenEpoch = new int[1024];
    private int _epoch = 1;

    // Orders 2..4: open addressing, key (prefix local id + 1) << 32 | token -> local id; 0 marks a free slot.
    private ulong[] _tKey = new ulong[1024];
    private int[] _tId = new int[1024];
    private int _tMask = 1023, _tShift = 64 - 10, _tCount;
    private int[] _usedSlots = new int[256];

    // Per local id: the exact n-gram key and its hash.
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
    private int[] _prefix = new int[64];   // local id of the (n−1)-gram starting at each position

    public CookedView View => new(OrderStart, EntryLocal, EntryCount, Length);

    public void Reset()
    {
        for (int i = 0; i < _tCount; i++) _tKey[_usedSlots[i]] = 0;
        _tCount = 0;
        if (++_epoch == int.MaxValue) { Array.Clear(_tokenEpoch); _epoch = 1; }
        LocalCount = 0;
        EntryTotal = 0;
        SentenceCount = 0;
    }

    /// <summary>Adds the sentences in order (an image's references). <paramref name="eos"/> &gt;= 0 appends that token.</summary>
    public void AddSentences(IReadOnlyList<int[]> sentences, int eos)
    {
        // Indexing, not foreach: an interface enumerator would allocate on every image.
        for (int j = 0; j < sentences.Count; j++) AddSentence(sentences[j], eos);
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
        if (EntryTotal + 4 * T > EntryLocal.Length)
        {
            int size = Math.Max(EntryTotal + 4 * T, EntryLocal.Length * 2);
            Array.Resize(ref EntryLocal, size);
            Array.Resize(ref EntryCount, size);
        }
        if (_prefix.Length < T) _prefix = new int[Math.Max(T, _prefix.Length * 2)];
        var prefix = _prefix;
        int stampValue = s + 1;

        OrderStart[5 * s] = EntryTotal;
        for (int i = 0; i < T; i++)
        {
            int id = InternToken(tokens[i]);
            prefix[i] = id;
            Count(id, stampValue);
        }
        for (int n = 2; n <= NGramKey.MaxOrder; n++)
        {
            OrderStart[5 * s + n - 1] = EntryTotal;
            // prefix[i] holds the (n−1)-gram at i; it is read before being overwritten with the n-gram at i.
            for (int i = 0; i + n <= T; i++)
            {
                int id = Intern(prefix[i], tokens[i + n - 1], n);
                prefix[i] = id;
                Count(id, stampValue);
            }
        }
        OrderStart[5 * s + 4] = EntryTotal;
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Count(int id, int stampValue)
    {
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int InternToken(int token)
    {
        if ((uint)token >= (uint)_tokenLocal.Length) GrowTokens(token);
        if (_tokenEpoch[token] == _epoch) return _tokenLocal[token];
        int id = NewLocal((uint)token + 1UL, 0);
        _tokenEpoch[token] = _epoch;
        _tokenLocal[token] = id;
        return id;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Intern(int prefixId, int token, int order)
    {
        ulong key = ((ulong)(uint)(prefixId + 1) << 32) | (uint)token;
        int i = (int)((key * 0x9E3779B97F4A7C15UL) >> _tShift);
        while (true)
        {
            ulong k = _tKey[i];
            if (k == key) return _tId[i];
            if (k == 0) break;
            i = (i + 1) & _tMask;
        }
        // The exact key extends the prefix's key with token + 1 in slot order − 1.
        ulong t = (uint)token + 1UL, lo = KeyLo[prefixId], hi = KeyHi[prefixId];
        switch (order)
        {
            case 2: lo |= t << 32; break;
            case 3: hi = t; break;
            default: hi |= t << 32; break;
        }
        int id = NewLocal(lo, hi);
        _tKey[i] = key; _tId[i] = id;
        _usedSlots[_tCount++] = i;
        if (_tCount * 2 > _tMask) GrowTable();
        return id;
    }

    private int NewLocal(ulong lo, ulong hi)
    {
        int id = LocalCount++;
        if (id >= KeyLo.Length) GrowLocal();
        KeyLo[id] = lo; KeyHi[id] = hi; KeyHash[id] = NGramKey.Hash(lo, hi);
        // A fresh id must not inherit a stamp from an earlier image.
        _stamp[id] = 0;
        return id;
    }

    private void GrowTokens(int token)
    {
        if (token < 0) throw new ArgumentOutOfRangeException(nameof(token), $"token id {token} is negative");
        int size = Math.Max(token + 1, _tokenLocal.Length * 2);
        Array.Resize(ref _tokenLocal, size);
        Array.Resize(ref _tokenEpoch, size);
    }

    private void GrowLocal()
    {
        int size = KeyLo.Length * 2;
        Array.Resize(ref KeyLo, size); Array.Resize(ref KeyHi, size); Array.Resize(ref KeyHash, size);
        Array.Resize(ref _stamp, size); Array.Resize(ref _stampEntry, size); Array.Resize(ref _usedSlots, size);
    }

    private void GrowTable()
    {
        var oldKey = _tKey;
        var oldId = _tId;
        var used = _usedSlots.AsSpan(0, _tCount).ToArray();
        int size = oldKey.Length * 2;
        _tKey = new ulong[size]; _tId = new int[size];
        _tMask = size - 1;
        _tShift--;
        _tCount = 0;
        foreach (int slot in used)
        {
            ulong key = oldKey[slot];
            int i = (int)((key * 0x9E3779B97F4A7C15UL) >> _tShift);
            while (_tKey[i] != 0) i = (i + 1) & _tMask;
            _tKey[i] = key; _tId[i] = oldId[slot];
            _usedSlots[_tCount++] = i;
        }
    }

    [ThreadStatic] private static ImageCooker? t_instance;
    public static ImageCooker ForThread() => t_instance ??= new ImageCooker();
}
