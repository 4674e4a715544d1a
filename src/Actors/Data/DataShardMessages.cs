using System.Collections.Immutable;
using Scst.Actors.Messages;

namespace Scst.Actors.Data;

/// <summary>Messages routed to a data shard through the shard region carry the shard index.</summary>
public interface IDataShardCommand : IScstMessage { int Shard { get; } }

/// <summary>Ask shard <see cref="Shard"/> for up to <see cref="MaxImages"/> image ids; the reply goes to the sender.</summary>
public sealed record RequestBatch(int Shard, int MaxImages) : IDataShardCommand;

/// <summary>
/// A slice of the shard's shuffled order for <see cref="Epoch"/>. It counts as consumed only once
/// <see cref="AckBatch"/> for <see cref="Seq"/> is journaled; until then it may be handed to another requester.
/// </summary>
public sealed record Batch(int Shard, long Epoch, long Seq, ImmutableArray<int> ImageIds) : IScstMessage;

/// <summary>Every image of the epoch is out; the epoch advances when the outstanding batches are acked or re-issued.</summary>
public sealed record NoBatchAvailable(int Shard, long Epoch, int Outstanding) : IScstMessage;

/// <summary>Sent by the learner after the update that used the batch was applied.</summary>
public sealed record AckBatch(int Shard, long Seq) : IDataShardCommand;

public sealed record BatchAcked(int Shard, long Seq, bool Duplicate) : IScstMessage;

public sealed record GetShardStatus(int Shard) : IDataShardCommand;

public sealed record ShardStatus(int Shard, long Epoch, int Size, int Cursor, int Outstanding, int ConsumedThisEpoch, long EpochsCompleted) : IScstMessage;

/// <summary>The shard cannot serve (e.g. its journal was written for another shard count); the text says why.</summary>
public sealed record ShardError(int Shard, string Message) : IScstMessage;

// Journal events of a data shard.
public sealed record ShardInitialized(int ShardCount, int DatasetSize, long Seed) : IScstMessage;
public sealed record BatchIssued(long Seq, long Epoch, int Offset, int Count) : IScstMessage;
public sealed record BatchConsumed(long Seq) : IScstMessage;
public sealed record EpochStarted(long Epoch) : IScstMessage;
