using System.Buffers.Binary;
using System.Numerics;
using Google.Protobuf;
using Scst.Training;

namespace Scst.Host.Reporting;

/// <summary>
/// Writes TensorBoard event files (TFRecord framing of <c>tensorflow.Event</c> protos with scalar summaries), so
/// <c>tensorboard --logdir RUN_DIR/tensorboard</c> shows the curves. Tags are <c>phase/name</c>.
/// </summary>
public sealed class TensorBoardSink : IMetricsSink
{
    private readonly FileStream _file;

    public string Path { get; }

    public TensorBoardSink(string directory)
    {
        Directory.CreateDirectory(directory);
        var stamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Path = System.IO.Path.Combine(directory, $"events.out.tfevents.{stamp}.{Environment.MachineName}.{Environment.ProcessId}");
        // Unbuffered, one write per record: a failed write cannot leave bytes behind to fail again on Dispose.
        _file = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0);
        WriteRecord(Event(step: 0, fileVersion: "brain.Event:2", scalars: null));
    }

    public void Log(string phase, long step, IReadOnlyDictionary<string, double> values)
    {
        var scalars = values.Where(kv => double.IsFinite(kv.Value)).Select(kv => ($"{phase}/{kv.Key}", (float)kv.Value)).ToList();
        if (scalars.Count == 0) return;
        WriteRecord(Event(step, fileVersion: null, scalars));
    }

    // tensorflow.Event: wall_time=1 (double), step=2 (int64), file_version=3 (string), summary=5 (Summary).
    // Summary: value=1 (repeated Value). Value: tag=1 (string), simple_value=2 (float).
    internal static byte[] Event(long step, string? fileVersion, IReadOnlyList<(string Tag, float Value)>? scalars)
    {
        using var ms = new MemoryStream();
        var o = new CodedOutputStream(ms);
        o.WriteTag(1, WireFormat.WireType.Fixed64);
        o.WriteDouble(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);
        o.WriteTag(2, WireFormat.WireType.Varint);
        o.WriteInt64(step);
        if (fileVersion is not null)
        {
            o.WriteTag(3, WireFormat.WireType.LengthDelimited);
            o.WriteString(fileVersion);
        }
        if (scalars is not null)
        {
            o.WriteTag(5, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(Summary(scalars)));
        }
        o.Flush();
        return ms.ToArray();
    }

    private static byte[] Summary(IReadOnlyList<(string Tag, float Value)> scalars)
    {
        using var ms = new MemoryStream();
        var o = new CodedOutputStream(ms);
        foreach (var (tag, value) in scalars)
        {
            using var vs = new MemoryStream();
            var v = new CodedOutputStream(vs);
            v.WriteTag(1, WireFormat.WireType.LengthDelimited);
            v.WriteString(tag);
            v.WriteTag(2, WireFormat.WireType.Fixed32);
            v.WriteFloat(value);
            v.Flush();
            o.WriteTag(1, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(vs.ToArray()));
        }
        o.Flush();
        return ms.ToArray();
    }

    // TFRecord: uint64 length, uint32 masked crc32c(length), data, uint32 masked crc32c(data).
    private void WriteRecord(byte[] data)
    {
        var record = new byte[12 + data.Length + 4];
        BinaryPrimitives.WriteUInt64LittleEndian(record, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(8), MaskedCrc32C(record.AsSpan(0, 8)));
        data.CopyTo(record, 12);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(12 + data.Length), MaskedCrc32C(data));
        try { _file.Write(record); }
        catch (IOException e) when (e.GetType() == typeof(IOException))
        {
            throw new IOException($"{Path}: TensorBoard record not written ({e.Message})", e) { HResult = e.HResult };
        }
    }

    internal static uint Crc32C(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    internal static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        var crc = Crc32C(data);
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }

    public void Dispose() => _file.Dispose();
}
