using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace Scst.Model.SafeTensors;

/// <summary>One tensor of a safetensors file to be written: its name, safetensors dtype ("F32", "BF16", ...) and shape.</summary>
public sealed record SafeTensorEntry(string Name, string DType, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));
    public int ElementSize => SafeTensorsStreamWriter.DTypeSize(DType);
    public long ByteCount => checked(ElementCount * ElementSize);
}

/// <summary>
/// Writes the bytes of <paramref name="tensor"/> that start <paramref name="byteOffset"/> bytes into it into
/// <paramref name="destination"/> (little-endian). Chunks arrive in order and always hold whole elements.
/// </summary>
public delegate void SafeTensorFill(SafeTensorEntry tensor, long byteOffset, Span<byte> destination);

/// <summary>
/// A planned file: the header bytes (8-byte length + JSON padded with spaces to a multiple of 8), the entries in
/// file order (names sorted ordinally, as <see cref="SafeTensorsFile.Serialize"/> sorts them) and their data offsets.
/// </summary>
public sealed record SafeTensorsLayout(byte[] Header, IReadOnlyList<SafeTensorEntry> Entries, IReadOnlyList<long> Offsets, long DataBytes)
{
    public long FileBytes => Header.LongLength + DataBytes;
}

/// <summary>What <see cref="SafeTensorsStreamWriter.Write"/> wrote and how fast.</summary>
public sealed record SafeTensorsWriteResult(string Path, long FileBytes, int TensorCount, TimeSpan Elapsed)
{
    public double MegabytesPerSecond => Elapsed.TotalSeconds > 0 ? FileBytes / 1e6 / Elapsed.TotalSeconds : double.PositiveInfinity;
}

/// <summary>
/// Streams a safetensors file of any size: the header is computed up front from names, dtypes and shapes, then the
/// tensor bytes are produced by a <see cref="SafeTensorFill"/> callback into a reusable buffer of a few MB and written
/// through a <see cref="FileStream"/> (64-bit offsets; nothing of the size of a tensor or file is ever held in memory).
/// Two buffers alternate so filling one overlaps writing the other. The file appears atomically: temp file in the same
/// folder, fsync, rename. For the same tensors the output equals <see cref="SafeTensorsFile.Serialize"/> byte for byte.
/// </summary>
public static class SafeTensorsStreamWriter
{
    public const int DefaultBufferBytes = 4 << 20;

    /// <summary>Bytes per element of a safetensors dtype name.</summary>
    public static int DTypeSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => throw new NotSupportedException($"safetensors dtype '{dtype}' is not supported"),
    };

    /// <summary>The header and offsets of a file holding <paramref name="tensors"/>; names must be unique.</summary>
    public static SafeTensorsLayout Plan(IEnumerable<SafeTensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var entries = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        for (var i = 1; i < entries.Count; i++)
            if (entries[i].Name == entries[i - 1].Name) throw new ArgumentException($"tensor '{entries[i].Name}' is listed twice.", nameof(tensors));
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var m = new JsonObject();
            foreach (var (k, v) in metadata) m[k] = v;
            header["__metadata__"] = m;
        }
        var offsets = new long[entries.Count];
        long offset = 0;
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (e.Name == "__metadata__") throw new ArgumentException("'__metadata__' is not a valid tensor name.", nameof(tensors));
            if (e.Shape.Any(d => d < 0)) throw new ArgumentException($"tensor '{e.Name}' has a negative dimension.", nameof(tensors));
            var bytes = e.ByteCount;
            header[e.Name] = new JsonObject
            {
                ["dtype"] = e.DType,
                ["shape"] = new JsonArray(e.Shape.Select(s => (JsonNode)JsonValue.Create(s)).ToArray()),
                ["data_offsets"] = new JsonArray(JsonValue.Create(offset), JsonValue.Create(offset + bytes)),
            };
            offsets[i] = offset;
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (json.Length + 7) / 8 * 8; // data starts 8-byte aligned; the JSON is padded with spaces
        var head = new byte[8 + padded];
        BinaryPrimitives.WriteInt64LittleEndian(head, padded);
        json.CopyTo(head, 8);
        head.AsSpan(8 + json.Length).Fill((byte)' ');
        return new SafeTensorsLayout(head, entries, offsets, offset);
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/> (atomically), asking <paramref name="fill"/> for their
    /// bytes chunk by chunk. <paramref name="progress"/> gets (bytes handed to the file, file bytes) after each buffer.
    /// </summary>
    public static SafeTensorsWriteResult Write(
        string path, IEnumerable<SafeTensorEntry> tensors, SafeTensorFill fill,
        IReadOnlyDictionary<string, string>? metadata = null, int bufferBytes = DefaultBufferBytes, Action<long, long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(fill);
        if (bufferBytes < 64) throw new ArgumentOutOfRangeException(nameof(bufferBytes), bufferBytes, "the buffer must hold at least 64 bytes.");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        var layout = Plan(tensors, metadata);
        var sw = Stopwatch.StartNew();
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None,
                BufferSize = 0, // our own buffers are the only ones
                PreallocationSize = layout.FileBytes, // fails early when the disk is too small, and avoids fragmentation
            }))
            {
                fs.Write(layout.Header);
                WriteData(fs, layout, fill, bufferBytes, progress);
                if (fs.Position != layout.FileBytes)
                    throw new InvalidOperationException($"{path}: wrote {fs.Position} bytes but planned {layout.FileBytes}.");
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch (IOException e) when (e.GetType() == typeof(IOException))
        {
            throw new IOException($"{full}: not written, the previous file is unchanged ({e.Message})", e) { HResult = e.HResult };
        }
        finally
        {
            try { if (File.Exists(tmp)) File.Delete(tmp); }
            catch (IOException) { }
        }
        return new SafeTensorsWriteResult(full, layout.FileBytes, layout.Entries.Count, sw.Elapsed);
    }

    private static void WriteData(FileStream fs, SafeTensorsLayout layout, SafeTensorFill fill, int bufferBytes, Action<long, long>? progress)
    {
        // Two buffers: while one is written on a pool thread, the caller fills the other.
        var buffers = new[] { new byte[bufferBytes], new byte[bufferBytes] };
        var current = 0;
        var used = 0;
        Task? pending = null;
        long written = layout.Header.LongLength;

        void Flush()
        {
            pending?.GetAwaiter().GetResult();
            pending = null;
            if (used == 0) return;
            var (buf, len) = (buffers[current], used);
            pending = Task.Run(() => fs.Write(buf, 0, len));
            written += len;
            current ^= 1;
            used = 0;
            progress?.Invoke(written, layout.FileBytes);
        }

        try
        {
            foreach (var entry in layout.Entries)
            {
                var total = entry.ByteCount;
                var size = entry.ElementSize;
                long done = 0;
                while (done < total)
                {
                    var free = bufferBytes - used;
                    if (free < size) { Flush(); continue; }
                    var n = (int)Math.Min(total - done, free / size * size);
                    fill(entry, done, buffers[current].AsSpan(used, n));
                    used += n;
                    done += n;
                }
            }
            Flush();
            pending?.GetAwaiter().GetResult();
            pending = null;
        }
        finally
        {
            // Never dispose the stream under a write still in flight (its error, if any, is already being thrown).
            try { pending?.Wait(); } catch (AggregateException) { }
        }
    }
}
