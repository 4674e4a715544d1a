using Scst.Actors.Messages;

namespace Scst.Actors.Weights;

/// <summary>
/// The learner's announcement of a policy version: metadata only. The bytes come from <see cref="Url"/> (the learner
/// node's <see cref="WeightServer"/>), in <see cref="ChunkSize"/>-byte chunks whose SHA-256s are
/// <see cref="ChunkSha256"/> (32 bytes each, in order), and the whole file's SHA-256 is <see cref="Sha256"/>.
/// </summary>
public sealed record WeightsAvailable(long Version, string Sha256, long SizeBytes, int ChunkSize, string Url, byte[] ChunkSha256) : IScstMessage
{
    /// <summary>Smallest chunk: large enough that per-chunk work (a hash, a check) is noise next to the bytes.</summary>
    public const int MinChunkSize = 4 << 20;
    /// <summary>
    /// Most chunks per file: 2,048 hashes are 64 KiB, so the announcement stays about half of Akka.Remote's 128,000-byte
    /// frame. 4 MiB chunks cover 8 GiB; a larger file gets larger chunks (<see cref="ChunkSizeFor"/>).
    /// </summary>
    public const int MaxChunks = 2048;

    public int ChunkCount => (int)((SizeBytes + ChunkSize - 1) / ChunkSize);

    public ReadOnlySpan<byte> ChunkHash(int index) => ChunkSha256.AsSpan(index * 32, 32);

    /// <summary>The announced chunk size for a file of <paramref name="size"/> bytes: 4 MiB, doubled until at most <see cref="MaxChunks"/> chunks.</summary>
    public static int ChunkSizeFor(long size)
    {
        long chunk = MinChunkSize;
        while ((size + chunk - 1) / chunk > MaxChunks) chunk *= 2;
        return checked((int)chunk);
    }

    /// <summary>What is wrong with it as an announcement (null: nothing), so a fetcher never acts on a malformed one.</summary>
    public string? Problem() =>
        SizeBytes < 0 ? "negative size"
        : ChunkSize <= 0 ? "chunk size not positive"
        : Sha256.Length != 64 ? "file SHA-256 is not 64 hex digits"
        : ChunkSha256.Length != ChunkCount * 32 ? $"{ChunkSha256.Length / 32} chunk hashes for {ChunkCount} chunks"
        : !Uri.TryCreate(Url, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https") ? $"url '{Url}' is not http(s)"
        : null;
}

/// <summary>Subscribe the sender to announcements; the publisher replies with the latest one if it has any.</summary>
public sealed record SubscribeWeights : IScstMessage;
