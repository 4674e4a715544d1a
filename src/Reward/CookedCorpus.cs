using System.Buffers;

namespace Scst.Reward;

/// <summary>
/// The cooked sentences of one image as <see cref="CiderScratch"/> reads them: sentence s's order-n
/// entries are <c>[OrderStart[5s+n], OrderStart[5s+n+1])</c> of <c>EntryLocal</c>/<c>EntryCount</c>
/// (positions are absolute in those arrays), and <c>Length[s]</c> is its token count.
/// </summary>
internal readonly ref struct CookedView(ReadOnlySpan<int> orderStart, int[] entryLocal, int[] entryCount, ReadOnlySpan<int> length)
{
    public readonly ReadOnlySpan<int> OrderStart = orderStart;
    public readonly int[] EntryLocal = entryLocal;
    public readonly int[] EntryCount = entryCount;
    public readonly ReadOnlySpan<int> Length = length;
}

/// <summary>
/// Every image of a corpus cooked once and kept: corpus CIDEr-D needs the document frequencies of all
/// images before it can score the first, and cooking an image twice costs more than storing it.
/// Each image's references come first and its candidate is its last sentence.
/// <see cref="Gid"/> maps each image-local id to its corpus-wide n-gram id. The big buffers are rented
/// from <see cref="ArrayPool{T}.Shared"/> (returned on <see cref="Dispose"/>), so scoring a corpus again
/// reuses memory rather than faulting in fresh pages.
/// </summary>
internal sealed class CookedCorpus : IDisposable
{
    public int[] EntryLocal, EntryCount, OrderStart, Length, Gid;
    public readonly int[] ImageSentence, ImageLocal;
    // The n-gram keys of every local id, kept only when another pass must look them up (the parallel path).
    public ulong[]? KeyLo, KeyHi, KeyHash;
    private int _entries, _sentences, _locals, _images;

    /// <summary>Buffers sized from an upper bound (a sentence of T tokens has at most 4T n-gram entries), so nothing grows.</summary>
    public CookedCorpus(int images, int sentences, long tokenBound, bool keepKeys)
    {
        long entries = Math.Max(16, 4 * tokenBound);
        if (entries > Array.MaxLength) throw new ArgumentException($"corpus too large to cook in one piece ({tokenBound} tokens)");
        EntryLocal = ArrayPool<int>.Shared.Rent((int)entries);
        EntryCount = ArrayPool<int>.Shared.Rent((int)entries);
        Gid = ArrayPool<int>.Shared.Rent((int)entries);
        OrderStart = ArrayPool<int>.Shared.Rent(5 * sentences);
        Length = ArrayPool<int>.Shared.Rent(sentences);
        ImageSentence = new int[images + 1];
        ImageLocal = new int[images + 1];
        if (keepKeys)
        {
            KeyLo = ArrayPool<ulong>.Shared.Rent((int)entries);
            KeyHi = ArrayPool<ulong>.Shared.Rent((int)entries);
            KeyHash = ArrayPool<ulong>.Shared.Rent((int)entries);
        }
    }

    public void Dispose()
    {
        foreach (var a in new[] { EntryLocal, EntryCount, Gid, OrderStart, Length }) if (a.Length > 0) ArrayPool<int>.Shared.Return(a);
        foreach (var a in new[] { KeyLo, KeyHi, KeyHash }) if (a is { Length: > 0 }) ArrayPool<ulong>.Shared.Return(a);
        EntryLocal = EntryCount = Gid = OrderStart = Length = [];
        KeyLo = KeyHi = KeyHash = null;
    }

    public int Images => _images;

    /// <summary>Appends the image held by the cooker.</summary>
    public void Append(ImageCooker c)
    {
        int i = _images++;
        int entryBase = _entries;
        Array.Copy(c.EntryLocal, 0, EntryLocal, entryBase, c.EntryTotal);
        Array.Copy(c.EntryCount, 0, EntryCount, entryBase, c.EntryTotal);
        var os = OrderStart.AsSpan(5 * _sentences, 5 * c.SentenceCount);
        for (int k = 0; k < os.Length; k++) os[k] = c.OrderStart[k] + entryBase;
        Array.Copy(c.Length, 0, Length, _sentences, c.SentenceCount);
        if (KeyLo is not null)
        {
            Array.Copy(c.KeyLo, 0, KeyLo, _locals, c.LocalCount);
            Array.Copy(c.KeyHi, 0, KeyHi!, _locals, c.LocalCount);
            Array.Copy(c.KeyHash, 0, KeyHash!, _locals, c.LocalCount);
        }
        _entries += c.EntryTotal;
        _sentences += c.SentenceCount;
        _locals += c.LocalCount;
        ImageSentence[i + 1] = _sentences;
        ImageLocal[i + 1] = _locals;
    }

    public int SentenceCount(int image) => ImageSentence[image + 1] - ImageSentence[image];

    public CookedView View(int image)
    {
        int s0 = ImageSentence[image], s1 = ImageSentence[image + 1];
        return new CookedView(OrderStart.AsSpan(5 * s0, 5 * (s1 - s0)), EntryLocal, EntryCount, Length.AsSpan(s0, s1 - s0));
    }
}
