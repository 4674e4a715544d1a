using Google.Protobuf;
using Scst.Actors.Messages;

namespace Scst.Actors.Weights;

/// <summary>
/// The learner's announcement of a policy version. The bytes never travel in one message (Akka.Remote drops
/// frames over 128,000 bytes): fetchers pull <see cref="ChunkSize"/>-byte chunks and check <see cref="Sha256"/>.
/// </summary>
public sealed record WeightsAvailable(long Version, string Sha256, long SizeBytes, int ChunkSize) : IScstMessage
{
    public int ChunkCount => (int)((SizeBytes + ChunkSize - 1) / ChunkSize);
}

/// <summary>Subscribe the sender to announcements; the publisher replies with the latest one if it has any.</summary>
public sealed record SubscribeWeights : IScstMessage;

public sealed record FetchWeightChunk(long Version, int Index) : IScstMessage;

/// <summary>One chunk with its own SHA-256, so a damaged chunk is refused and fetched again on its own.</summary>
public sealed record WeightChunk(long Version, int Index, ByteString Data, string Sha256) : IScstMessage;

/// <summary>The publisher no longer keeps that version (it keeps the newest few); fetch <see cref="Latest"/> instead.</summary>
public sealed record WeightVersionGone(long Version, long Latest) : IScstMessage;
