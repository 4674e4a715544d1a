using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;

namespace Scst.Actors.Data;

/// <param name="ShardCount">S: fixed for a journal (see <see cref="ShardInitialized"/>).</param>
/// <param name="BatchLease">An issued, unacked batch is handed to another requester after this long.</param>
public sealed record DataShardSettings(int ShardCount, int DatasetSize, long Seed, TimeSpan BatchLease)
{
    public void Validate()
    {
        if (ShardCount <= 0) throw new ArgumentException($"data shard count must be > 0, got {ShardCount}");
        if (DatasetSize < ShardCount) throw new ArgumentException($"dataset size {DatasetSize} is smaller than the shard count {ShardCount}");
        if (BatchLease <= TimeSpan.Zero) throw new ArgumentException($"batch lease must be positive, got {BatchLease}");
    }
}

/// <summary>
/// One data shard: epoch, shuffled order and cursor, journaled. A batch is consumed only when its ack is journaled;
/// batches that are unacked when the requester dies, the lease runs out or the shard restarts are handed out again
/// with the same seq and ids, so across crashes each image is consumed exactly once per epoch.
/// </summary>
public sealed class DataShardEntity : ReceivePersistentActor
{
    sealed class Issued(long seq, int offset, int count)
    {
        public long Seq { get; } = seq;
        public int Offset { get; } = offset;
        public int Count { get; } = count;
        public IActorRef? Requester { get; set; }
        public DateTime LeaseUntil { get; set; }
    }

    readonly DataShardSettings _settings;
    readonly int _shard;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly SortedDictionary<long, Issued> _outstanding = [];
    bool _initialized;
    string? _error;
    long _epoch;
    int[] _order = [];
    int _cursor;
    long _nextSeq;
    int _consumedThisEpoch;

    public static string PersistenceIdFor(int shard) => $"scst-data-shard-{shard}";

    public static Props Props(DataShardSettings settings, int shard) => Akka.Actor.Props.Create(() => new DataShardEntity(settings, shard));

    /// <summary>For sharding: the entity id is the shard index.</summary>
    public static Props PropsForEntity(DataShardSettings settings, string entityId) =>
        int.TryParse(entityId, out var s) && s >= 0
            ? Props(settings, s)
            : throw new ArgumentException($"data shard entity id '{entityId}' is not a shard index");

    public DataShardEntity(DataShardSettings settings, int shard)
    {
        _settings = settings;
        _shard = shard;
        if (shard >= settings.ShardCount)
            _error = $"data shard {shard} does not exist: this run has {settings.ShardCount} shards";

        Recover<ShardInitialized>(e =>
        {
            _initialized = true;
            if (e.ShardCount != settings.ShardCount || e.DatasetSize != settings.DatasetSize || e.Seed != settings.Seed)
                _error = $"data shard {shard}: the journal was written with shard-count={e.ShardCount}, dataset-size={e.DatasetSize}, seed={e.Seed}; " +
                         $"this run asks shard-count={settings.ShardCount}, dataset-size={settings.DatasetSize}, seed={settings.Seed}. " +
                         "The data layout of a journal never changes: resume with the original settings or start a new run folder.";
        });
        Recover<EpochStarted>(ApplyEpoch);
        Recover<BatchIssued>(ApplyIssued);
        Recover<BatchConsumed>(ApplyConsumed);
        Recover<RecoveryCompleted>(_ =>
        {
            if (_error is not null) { _log.Error(_error); return; }
            if (!_initialized)
            {
                PersistAll(new object[] { new ShardInitialized(settings.ShardCount, settings.DatasetSize, settings.Seed), new EpochStarted(0) }, e =>
                {
                    if (e is ShardInitialized) _initialized = true;
                    else ApplyEpoch((EpochStarted)e);
                });
            }
            else if (_outstanding.Count > 0)
                _log.Info("data shard {0} recovered at epoch {1}, cursor {2}/{3}; {4} unacked batches will be handed out again",
                    shard, _epoch, _cursor, _order.Length, _outstanding.Count);
        });

        Command<RequestBatch>(OnRequest);
        Command<AckBatch>(OnAck);
        Command<GetShardStatus>(_ => Sender.Tell(Status()));
        Command<Terminated>(t =>
        {
            foreach (var b in _outstanding.Values)
                if (Equals(b.Requester, t.ActorRef)) b.Requester = null;
        });
    }

    public override string PersistenceId => PersistenceIdFor(_shard);

    ShardStatus Status() => new(_shard, _epoch, _order.Length, _cursor, _outstanding.Count, _consumedThisEpoch, _epoch);

    void ApplyEpoch(EpochStarted e)
    {
        _epoch = e.Epoch;
        _order = ShardOrder.Shuffled(_shard, _settings.ShardCount, _settings.DatasetSize, _settings.Seed, e.Epoch);
        _cursor = 0;
        _outstanding.Clear();
        _consumedThisEpoch = 0;
    }

    void ApplyIssued(BatchIssued e)
    {
        _outstanding[e.Seq] = new Issued(e.Seq, e.Offset, e.Count);
        _cursor = Math.Max(_cursor, e.Offset + e.Count);
        _nextSeq = Math.Max(_nextSeq, e.Seq + 1);
    }

    void ApplyConsumed(BatchConsumed e)
    {
        if (_outstanding.Remove(e.Seq, out var b)) _consumedThisEpoch += b.Count;
    }

    Batch ToBatch(Issued b) => new(_shard, _epoch, b.Seq, ImmutableArray.Create(_order, b.Offset, b.Count));

    void Lease(Issued b, IActorRef requester)
    {
        b.Requester = requester;
        b.LeaseUntil = DateTime.UtcNow + _settings.BatchLease;
        // An Ask's temporary actor dies as soon as the reply arrives while its caller still holds the batch:
        // only real actors are watched; for the others the lease alone decides.
        if (!requester.IsNobody() && requester.Path.Elements is not ["temp", ..]) Context.Watch(requester);
    }

    void OnRequest(RequestBatch m)
    {
        if (_error is not null) { Sender.Tell(new ShardError(_shard, _error)); return; }
        if (m.MaxImages <= 0) { Sender.Tell(new ShardError(_shard, $"RequestBatch.MaxImages must be > 0, got {m.MaxImages}")); return; }
        var now = DateTime.UtcNow;
        var orphan = _outstanding.Values.FirstOrDefault(b => b.Requester is null || b.LeaseUntil < now);
        if (orphan is not null)
        {
            Lease(orphan, Sender);
            Sender.Tell(ToBatch(orphan));
            return;
        }
        if (_cursor < _order.Length)
        {
            var requester = Sender;
            var e = new BatchIssued(_nextSeq, _epoch, _cursor, Math.Min(m.MaxImages, _order.Length - _cursor));
            Persist(e, ev =>
            {
                ApplyIssued(ev);
                var b = _outstanding[ev.Seq];
                Lease(b, requester);
                requester.Tell(ToBatch(b));
            });
            return;
        }
        Sender.Tell(new NoBatchAvailable(_shard, _epoch, _outstanding.Count));
    }

    void OnAck(AckBatch m)
    {
        if (_error is not null) { Sender.Tell(new ShardError(_shard, _error)); return; }
        if (!_outstanding.ContainsKey(m.Seq)) { Sender.Tell(new BatchAcked(_shard, m.Seq, Duplicate: true)); return; }
        var requester = Sender;
        Persist(new BatchConsumed(m.Seq), ev =>
        {
            ApplyConsumed(ev);
            requester.Tell(new BatchAcked(_shard, ev.Seq, Duplicate: false));
            if (_cursor == _order.Length && _outstanding.Count == 0)
                Persist(new EpochStarted(_epoch + 1), ep =>
                {
                    _log.Info("data shard {0} finished epoch {1} ({2} images)", _shard, _epoch, _consumedThisEpoch);
                    ApplyEpoch(ep);
                });
        });
    }
}
