using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Model.SafeTensors;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
/// (<c>{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}</c>),
/// then the raw little-endian tensor bytes. No code is ever executed on load (unlike pickle).
/// </summary>
public static class SafeTensorsFile
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    /// <summary>Reads every tensor of a file onto the CPU, with the file's <c>__metadata__</c>.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file '{path}' does not exist.", path);
        return Deserialize(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses safetensors bytes; <paramref name="source"/> names the origin in error messages.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Deserialize(ReadOnlySpan<byte> bytes, string source = "<bytes>")
    {
        if (bytes.Length < 8)
            throw new InvalidDataException($"{source}: not a safetensors file ({bytes.Length} bytes; expected at least the 8-byte header length).");
        var headerLen = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        if (headerLen <= 0 || headerLen > MaxHeaderBytes || 8 + headerLen > bytes.Length)
            throw new InvalidDataException($"{source}: corrupted safetensors header: header length {headerLen} does not fit a file of {bytes.Length} bytes.");
        JsonObject header;
        try
        {
            header = JsonNode.Parse(bytes.Slice(8, (int)headerLen))?.AsObject()
                     ?? throw new InvalidDataException("header is null");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException)
        {
            throw new InvalidDataException($"{source}: corrupted safetensors header: the {headerLen}-byte JSON header does not parse ({e.Message}).", e);
        }
        var data = bytes[(int)(8 + headerLen)..];
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
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
                var (scalar, elemSize) = ParseDType(dtype);
                var count = shape.Aggregate(1L, (a, b) => a * b);
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] > data.Length || offsets[1] - offsets[0] != count * elemSize)
                    throw new InvalidDataException($"data_offsets [{string.Join(",", offsets)}] do not match shape [{string.Join(",", shape)}] of {dtype} in a data section of {data.Length} bytes");
                var t = empty(shape, scalar);
                var span = data.Slice((int)offsets[0], (int)(offsets[1] - offsets[0]));
                CopyInto(t, span);
                tensors[name] = t;
            }
            catch (Exception e) when (e is InvalidDataException or InvalidOperationException or FormatException or NotSupportedException)
            {
                foreach (var t in tensors.Values) t.Dispose();
                throw new InvalidDataException($"{source}: tensor '{name}': {e.Message}", e);
            }
        }
        return (tensors, metadata);
    }

    /// <summary>Serialises tensors (any device; copied to the CPU) in safetensors layout, keys sorted.</summary>
    public static byte[] Serialize(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var m = new JsonObject();
            foreach (var (k, v) in metadata) m[k] = v;
            header["__metadata__"] = m;
        }
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        var blobs = new List<byte[]>(names.Count);
        long offset = 0;
        foreach (var name in names)
        {
            var t = tensors[name];
            var (dtype, _) = DTypeName(t.dtype);
            var blob = ToBytes(t);
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(t.shape.Select(s => (JsonNode)JsonValue.Create(s)).ToArray()),
                ["data_offsets"] = new JsonArray(JsonValue.Create(offset), JsonValue.Create(offset + blob.Length)),
            };
            offset += blob.Length;
            blobs.Add(blob);
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        // The format asks that data start 8-byte aligned; pad the header with spaces.
        var padded = (json.Length + 7) / 8 * 8;
        var result = new byte[8 + padded + offset];
        BinaryPrimitives.WriteInt64LittleEndian(result, padded);
        json.CopyTo(result, 8);
        for (var i = json.Length; i < padded; i++) result[8 + i] = (byte)' ';
        long pos = 8 + padded;
        foreach (var b in blobs) { b.CopyTo(result, pos); pos += b.Length; }
        return result;
    }

    /// <summary>
    /// Writes atomically (temp file, fsync, rename) and returns the SHA-256 (lower-case hex) of the bytes written.
    /// </summary>
    public static string Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var bytes = Serialize(tensors, metadata);
        WriteAtomically(path, bytes);
        return Convert.ToHexStringLower(SHA256.HashData(bytes));
    }

    /// <summary>Temp file in the same folder, flushed to disk, then renamed over the target.</summary>
    public static void WriteAtomically(string path, byte[] bytes)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private static (ScalarType, int) ParseDType(string dtype) => dtype switch
    {
        "F32" => (ScalarType.Float32, 4),
        "F16" => (ScalarType.Float16, 2),
        "BF16" => (ScalarType.BFloat16, 2),
        "F64" => (ScalarType.Float64, 8),
        "I64" => (ScalarType.Int64, 8),
        "I32" => (ScalarType.Int32, 4),
        "I16" => (ScalarType.Int16, 2),
        "I8" => (ScalarType.Int8, 1),
        "U8" => (ScalarType.Byte, 1),
        "BOOL" => (ScalarType.Bool, 1),
        _ => throw new NotSupportedException($"dtype '{dtype}' is not supported (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL are)"),
    };

    private static (string, int) DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => ("F32", 4),
        ScalarType.Float16 => ("F16", 2),
        ScalarType.BFloat16 => ("BF16", 2),
        ScalarType.Float64 => ("F64", 8),
        ScalarType.Int64 => ("I64", 8),
        ScalarType.Int32 => ("I32", 4),
        ScalarType.Int16 => ("I16", 2),
        ScalarType.Int8 => ("I8", 1),
        ScalarType.Byte => ("U8", 1),
        ScalarType.Bool => ("BOOL", 1),
        _ => throw new NotSupportedException($"cannot write dtype {t} to safetensors"),
    };

    // Raw byte copy through Tensor.bytes: F16/BF16 need no conversion and nothing is reinterpreted by hand.
    private static void CopyInto(Tensor t, ReadOnlySpan<byte> src)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        if (t.NumberOfElements == 0) return;
        t.bytes = src.ToArray();
    }

    private static byte[] ToBytes(Tensor t)
    {
        using var cpu = t.detach().cpu().contiguous();
        return cpu.NumberOfElements == 0 ? [] : cpu.bytes.ToArray();
    }
}
