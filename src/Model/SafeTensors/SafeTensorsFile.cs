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
    /// <summary>Reads every tensor of a file onto the CPU, with the file's <c>__metadata__</c>.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        using var reader = SafeTensorsReader.Open(path);
        return (reader.ReadAll(), new Dictionary<string, string>(reader.Metadata, StringComparer.Ordinal));
    }

    /// <summary>Serialises tensors (any device; copied to the CPU) in safetensors layout, keys sorted.</summary>
    public static byte[] Serialize(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var ms = new MemoryStream();
        WriteTo(ms, tensors, metadata);
        return ms.ToArray();
    }

    /// <summary>
    /// Streams tensors to <paramref name="stream"/> one at a time (only one tensor's bytes on the CPU at once, so a file
    /// may exceed 2 GB) and returns the SHA-256 (lower-case hex) of what was written.
    /// </summary>
    public static string WriteTo(Stream stream, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var layout = SafeTensorsStreamWriter.Plan(tensors.Select(kv => new SafeTensorEntry(kv.Key, DTypeName(kv.Value.dtype).Item1, kv.Value.shape)), metadata);
        var names = layout.Entries.Select(e => e.Name);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        stream.Write(layout.Header);
        sha.AppendData(layout.Header);
        foreach (var name in names)
        {
            using var cpu = tensors[name].detach().cpu().contiguous();
            if (cpu.NumberOfElements == 0) continue;
            // Views of at most 1 GB: a span cannot cover 2 GB or more.
            using var flat = cpu.view(-1);
            var perSlice = Math.Max(1, (1L << 30) / Math.Max(1, DTypeName(cpu.dtype).Item2));
            for (long at = 0; at < flat.shape[0]; at += perSlice)
            {
                using var part = flat.narrow(0, at, Math.Min(perSlice, flat.shape[0] - at));
                var span = part.bytes;
                stream.Write(span);
                sha.AppendData(span);
            }
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>
    /// Writes atomically (temp file, fsync, rename) and returns the SHA-256 (lower-case hex) of the bytes written.
    /// </summary>
    public static string Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        string sha = "";
        WriteAtomically(path, fs => sha = WriteTo(fs, tensors, metadata));
        return sha;
    }

    /// <summary>Temp file in the same folder, flushed to disk, then renamed over the target.</summary>
    public static void WriteAtomically(string path, byte[] bytes) => WriteAtomically(path, fs => fs.Write(bytes));

    /// <summary>
    /// Temp file in the same folder, written by <paramref name="write"/>, flushed to disk, then renamed over the target:
    /// a failure (a full disk) leaves the target as it was, and the error names the target, not the temp file.
    /// </summary>
    public static void WriteAtomically(string path, Action<FileStream> write)
    {
        using var staged = StagedFile.Write(path, write);
        staged.Commit();
    }

    internal static (ScalarType, int) ParseDType(string dtype) => dtype switch
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
}
