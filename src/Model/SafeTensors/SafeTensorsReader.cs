using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace Scst.Model.SafeTensors;

/// <summary>
/// Reads a safetensors file of any size tensor by tensor: the header is parsed once, then each tensor is read with
/// 64-bit positional reads straight into the memory of a fresh CPU tensor. Nothing but the tensor asked for is resident,
/// so a 10 GB shard costs the largest tensor in it, not the file (a memory map would count every touched page in RSS).
/// The same reader works on a payload already in memory (<see cref="Open(SegmentedBuffer, string)"/>: fetched weights).
/// </summary>
public sealed class SafeTensorsReader : IDisposable
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;
    private readonly SafeFileHandle? _file;
    private readonly SegmentedBuffer? _memory;
    private readonly long _dataStart;

    /// <summary>One tensor's place in the file: offsets are relative to the start of the data section.</summary>
    public sealed record Entry(string Name, string DType, ScalarType ScalarType, long[] Shape, long Begin, long End)
    {
        public long Bytes => End - Begin;
        public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
    }

    public string Path { get; }
    public long Length { get; }
    /// <summary>Tensors in the order of their bytes in the file (sequential reads).</summary>
    public IReadOnlyList<Entry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    private readonly Dictionary<string, Entry> _byName;

    private SafeTensorsReader(string path, SafeFileHandle? file, SegmentedBuffer? memory, long length, long dataStart, List<Entry> entries, Dictionary<string, string> metadata)
    {
        Path = path; _file = file; _memory = memory; Length = length; _dataStart = dataStart; Entries = entries; Metadata = metadata;
        _byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
    }

    public static SafeTensorsReader Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file '{path}' does not exist.", path);
        var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try { return Open(path, file, null, RandomAccess.GetLength(file)); }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>A reader of a safetensors payload in memory; <paramref name="name"/> names it in errors. The buffer must
    /// not change while the reader is in use.</summary>
    public static SafeTensorsReader Open(SegmentedBuffer payload, string name) => Open(name, null, payload, payload.Length);

    private static SafeTensorsReader Open(string path, SafeFileHandle? file, SegmentedBuffer? memory, long length)
    {
        if (length < 8)
            throw new InvalidDataException($"{path}: not a safetensors file ({length} bytes; expected at least the 8-byte header length).");
        Span<byte> lenBytes = stackalloc byte[8];
        ReadAt(file, memory, lenBytes, 0, path);
        var headerLen = BinaryPrimitives.ReadInt64LittleEndian(lenBytes);
        if (headerLen <= 0 || headerLen > MaxHeaderBytes || 8 + headerLen > length)
            throw new InvalidDataException($"{path}: corrupted safetensors header: header length {headerLen} does not fit a file of {length} bytes.");
        var json = new byte[headerLen];
        ReadAt(file, memory, json, 8, path);
        var (entries, metadata) = ParseHeader(json, length - 8 - headerLen, path);
        return new SafeTensorsReader(path, file, memory, length, 8 + headerLen, entries, metadata);
    }

    private static void ReadAt(SafeFileHandle? file, SegmentedBuffer? memory, Span<byte> into, long offset, string path)
    {
        if (memory is not null) memory.CopyTo(offset, into);
        else ReadExactly(file!, into, offset, path);
    }

    public bool Contains(string name) => _byName.ContainsKey(name);
    public Entry this[string name] => _byName.TryGetValue(name, out var e) ? e
        : throw new KeyNotFoundException($"{Path}: no tensor '{name}'.");

    /// <summary>The tensor in the file's dtype, on the CPU, owned by the caller.</summary>
    public Tensor Read(Entry e)
    {
        var t = empty(e.Shape, e.ScalarType);
        try
        {
            // Tensors of 2 GB and more cannot be one span: read them in slices of a flat view.
            const long slice = 1L << 30;
            using var flat = t.view(-1);
            var elementSize = e.Bytes / Math.Max(1, e.Elements);
            for (long at = 0; at < e.Bytes; at += slice)
            {
                var n = Math.Min(slice, e.Bytes - at);
                using var part = flat.narrow(0, at / elementSize, n / elementSize);
                ReadAt(_file, _memory, part.bytes, _dataStart + e.Begin + at, Path);
            }
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    public Tensor Read(string name) => Read(this[name]);

    /// <summary>The first bytes of a tensor's data (at most <paramref name="into"/>'s length); returns how many.</summary>
    public int ReadPrefix(Entry e, Span<byte> into)
    {
        var n = (int)Math.Min(into.Length, e.Bytes);
        ReadAt(_file, _memory, into[..n], _dataStart + e.Begin, Path);
        return n;
    }

    /// <summary>Every tensor of the file on the CPU (for files that fit in memory: our checkpoints, small fixtures).</summary>
    public Dictionary<string, Tensor> ReadAll()
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var e in Entries) result[e.Name] = Read(e);
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>SHA-256 (lower-case hex) of a whole file, streamed.</summary>
    public static string Sha256OfFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static void ReadExactly(SafeFileHandle file, Span<byte> into, long offset, string path)
    {
        while (into.Length > 0)
        {
            var n = RandomAccess.Read(file, into, offset);
            if (n <= 0) throw new InvalidDataException($"{path}: file ends at byte {offset}, inside a tensor; the file is truncated.");
            into = into[n..];
            offset += n;
        }
    }

    private static (List<Entry>, Dictionary<string, string>) ParseHeader(byte[] json, long dataLength, string path)
    {
        JsonObject header;
        try
        {
            header = JsonNode.Parse(json)?.AsObject() ?? throw new InvalidDataException("header is null");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException)
        {
            throw new InvalidDataException($"{path}: corrupted safetensors header: the {json.Length}-byte JSON header does not parse ({e.Message}).", e);
        }
        var entries = new List<Entry>(header.Count);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                if (node is JsonObject meta)
                    foreach (var (k, v) in meta) metadata[k] = v?.GetValue<string>() ?? "";
                continue;
            }
            try
            {
                var entry = node?.AsObject() ?? throw new InvalidDataException("entry is null");
                var dtype = entry["dtype"]?.GetValue<string>() ?? throw new InvalidDataException("no dtype");
                var shape = (entry["shape"]?.AsArray() ?? throw new InvalidDataException("no shape")).Select(s => s!.GetValue<long>()).ToArray();
                var offsets = (entry["data_offsets"]?.AsArray() ?? throw new InvalidDataException("no data_offsets")).Select(s => s!.GetValue<long>()).ToArray();
                var (scalar, elemSize) = SafeTensorsFile.ParseDType(dtype);
                var count = shape.Aggregate(1L, (a, b) => a * b);
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] > dataLength || offsets[1] - offsets[0] != count * elemSize)
                    throw new InvalidDataException($"data_offsets [{string.Join(",", offsets)}] do not match shape [{string.Join(",", shape)}] of {dtype} in a data section of {dataLength} bytes");
                entries.Add(new Entry(name, dtype, scalar, shape, offsets[0], offsets[1]));
            }
            catch (Exception e) when (e is InvalidDataException or InvalidOperationException or FormatException or NotSupportedException)
            {
                throw new InvalidDataException($"{path}: tensor '{name}': {e.Message}", e);
            }
        }
        entries.Sort((a, b) => a.Begin.CompareTo(b.Begin));
        return (entries, metadata);
    }

    public void Dispose() => _file?.Dispose();
}
