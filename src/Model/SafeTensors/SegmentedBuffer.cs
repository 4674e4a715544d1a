namespace Scst.Model.SafeTensors;

/// <summary>
/// A payload of any size held in memory as equal segments (the weight plane's transfer chunks): no 2 GB array limit,
/// each segment a place to receive one chunk into and hash it where it lies. <see cref="Reset"/> keeps the segments it
/// has, so a buffer reused for the next version of the same size allocates nothing and takes no page faults.
/// </summary>
public sealed class SegmentedBuffer
{
    readonly List<byte[]> _segments = [];

    public long Length { get; private set; }
    public int SegmentSize { get; private set; }
    public int SegmentCount => SegmentSize == 0 ? 0 : (int)((Length + SegmentSize - 1) / SegmentSize);
    /// <summary>Bytes allocated (what the buffer costs while it lives).</summary>
    public long Capacity => _segments.Sum(s => (long)s.Length);

    /// <summary>Makes room for <paramref name="length"/> bytes in segments of <paramref name="segmentSize"/>; contents are undefined.</summary>
    public void Reset(long length, int segmentSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(segmentSize);
        if (segmentSize != SegmentSize) _segments.Clear(); // a different chunk size (a file past 8 GiB): start over
        (Length, SegmentSize) = (length, segmentSize);
        var count = SegmentCount;
        // Drop what this payload does not need first, so a smaller version does not keep a larger one's memory.
        if (_segments.Count > count) _segments.RemoveRange(count, _segments.Count - count);
        while (_segments.Count < count) _segments.Add(GC.AllocateUninitializedArray<byte>(segmentSize));
    }

    public int SegmentLength(int index) => (int)Math.Min(SegmentSize, Length - (long)index * SegmentSize);

    public Memory<byte> Segment(int index) => _segments[index].AsMemory(0, SegmentLength(index));

    /// <summary>Copies <paramref name="into"/>.Length bytes from <paramref name="offset"/>.</summary>
    public void CopyTo(long offset, Span<byte> into)
    {
        if (offset < 0 || offset + into.Length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes {offset}..{offset + into.Length} are outside the buffer's {Length}");
        while (into.Length > 0)
        {
            var index = (int)(offset / SegmentSize);
            var at = (int)(offset - (long)index * SegmentSize);
            var n = Math.Min(into.Length, SegmentLength(index) - at);
            _segments[index].AsSpan(at, n).CopyTo(into);
            into = into[n..];
            offset += n;
        }
    }

    /// <summary>Writes the payload to <paramref name="stream"/>.</summary>
    public void WriteTo(Stream stream)
    {
        for (var i = 0; i < SegmentCount; i++) stream.Write(Segment(i).Span);
    }
}
