using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Microsoft.Extensions.Logging;
using Scst.Training.Configuration;
using Scst.Training;
using Scst.Actors.Weights;
using Scst.Reward;

namespace Scst.Actors.Pipeline;

/// <param name="WorkDir">This replica's own folder: tokenizer copy and checkpoints.</param>
/// <param name="Finished">Completed when the learner says the run is over (the rollout process then exits).</param>
/// <param name="Device">This replica's device (<see cref="RolloutDevices"/>: cuda:N or a CPU slot cpu:N).</param>
public sealed record RolloutSettings(ScstConfig Config, string WorkDir, IActorRef Learner, ILogger Log, WeightFetcherSettings Fetcher,
    TaskCompletionSource<TrainingFinished>? Finished = null, string Device = "cpu:0");

/// <summary>
/// One policy replica (a device, or a CPU slot) in eval mode. Runs on a pinned thread because TorchSharp's dispose
/// scopes and grad mode are thread-static. Loads each version from the verified safetensors bytes its
/// <see cref="WeightFetcher"/> lends it in memory (or, in the learner's process, from the learner's in-memory snapshot), and
/// answers <see cref="RolloutRequest"/>s with the training core's <see cref="RolloutGenerator.Generate"/> (and greedy
/// captions for the greedy baseline), stamped with the version. It holds a policy and a sampler, never an optimizer or a reward.
/// </summary>
public sealed class RolloutActor : ReceiveActor, IWithTimers
{
    public const string Dispatcher = "scst.rollout-dispatcher";

    readonly RolloutSettings _s;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly RunSetup _setup;
    readonly RolloutGenerator _rollouts;
    readonly string _node;
    readonly WorkerFingerprint _fingerprint;
    readonly Queue<(RolloutRequest Request, IActorRef ReplyTo, long Received)> _queue = new();
    IActorRef? _publisher;
    IActorRef? _fetcher;
    long _version = -1;
    int _fetcherGeneration;
    long _served;
    readonly DateTime _started = DateTime.UtcNow;
    DateTime _noLearnerSaid;
    static readonly TimeSpan NoLearnerReport = TimeSpan.FromSeconds(30);

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(RolloutSettings s) => Akka.Actor.Props.Create(() => new RolloutActor(s)).WithDispatcher(Dispatcher);

    sealed record Register { public static readonly Register Instance = new(); }

    public RolloutActor(RolloutSettings s)
    {
        _s = s;
        _node = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();
        _setup = RolloutDevices.LoadModel(s.Config, s.Device, s.WorkDir, s.Log);
        _log.Info("{0}: on {1}, model held {2}", Self.Path.Name, s.Device, _setup.Parameters);
        _rollouts = new RolloutGenerator(_setup.Policy, _setup.Corpus.Train, s.Config);
        _fingerprint = WorkerFingerprint.ForRollout(_setup);

        Receive<Register>(_ =>
        {
            _s.Learner.Tell(new RegisterWorker(RegisterWorker.Rollout, _node, _fingerprint));
            // Joined but unanswered: no learner-role node in the cluster yet (or it is still loading).
            if (_publisher is null && DateTime.UtcNow - _noLearnerSaid >= NoLearnerReport)
            {
                if (_noLearnerSaid != default) _log.Warning("{0}: no learner has answered for {1:F0} s; is a node with --role learner in this cluster?", Self.Path.Name, (DateTime.UtcNow - _started).TotalSeconds);
                _noLearnerSaid = DateTime.UtcNow;
            }
        });
        Receive<WorkerWelcome>(OnWelcome);
        Receive<WorkerRefused>(r =>
        {
            _log.Error("{0}: the learner refused this node: {1}", Self.Path.Name, r.Reason);
            Timers.Cancel("register");
            _s.Finished?.TrySetException(new WorkerRefusedException($"the learner refused this rollout node: {r.Reason}; start it with the learner's config and build"));
        });
        Receive<WeightsReady>(OnWeights);
        Receive<LocalPolicyWeights>(OnLocalWeights);
        Receive<WeightsFetchFailed>(f =>
        {
            _log.Warning("{0}: weights v{1} could not be fetched ({2}); subscribing again", Self.Path.Name, f.Version, f.Reason);
            StartFetcher();
        });
        Receive<RolloutRequest>(r => { _queue.Enqueue((r, Sender, Stopwatch.GetTimestamp())); Serve(); });
        Receive<TrainingFinished>(f =>
        {
            _log.Info("{0}: run {1} after {2} updates; served {3} rollouts", Self.Path.Name, f.Stopped ? "stopped" : "finished", f.Updates, _served);
            Timers.Cancel("register"); // the learner is leaving: nothing to register with
            _s.Finished?.TrySetResult(f);
        });
    }

    protected override void PreStart() =>
        // Re-registering on a timer is how a restarted (or moved) learner singleton finds its workers again.
        Timers.StartPeriodicTimer("register", Register.Instance, TimeSpan.Zero, TimeSpan.FromSeconds(1));

    protected override void PostStop() => _setup.Dispose();

    void OnWelcome(WorkerWelcome w)
    {
        if (Equals(w.Publisher, _publisher)) return;
        _log.Info("{0}: learner at {1} (policy v{2})", Self.Path.Name, w.Publisher.Path.Address, w.PolicyVersion);
        _publisher = w.Publisher;
        // A new learner incarnation may restart from an older journaled version than what this replica holds.
        _version = -1;
        _queue.Clear();
        // A learner in this process hands its weights over in memory (LocalPolicyWeights); a remote one publishes files.
        if (!w.Publisher.Path.Address.HasLocalScope) StartFetcher();
        else if (_fetcher is not null) { Context.Stop(_fetcher); _fetcher = null; }
    }

    void OnLocalWeights(LocalPolicyWeights w)
    {
        if (w.Version <= _version) { w.Snapshot.Dispose(); return; }
        PolicyWeights.LoadSnapshot(_setup.Policy.Model, _setup.Base, w.Snapshot, $"in-process weights v{w.Version}");
        _version = w.Version;
        Serve();
    }

    void StartFetcher()
    {
        if (_fetcher is not null) Context.Stop(_fetcher);
        _fetcher = Context.ActorOf(WeightFetcher.Props(_publisher!, Self, _s.Fetcher), $"fetcher-{++_fetcherGeneration}");
    }

    void OnWeights(WeightsReady w)
    {
        // The fetcher's buffer goes back to it once loaded (or ignored): it receives the next version into it.
        using (w)
        {
            if (!Equals(Sender, _fetcher)) return; // a fetcher of a previous learner
            // The fetcher verified every chunk while it arrived: the bytes are loaded from its memory, not hashed again.
            PolicyWeights.Load(_setup.Policy.Model, _setup.Base, w.Payload, $"weights v{w.Version} fetched from the learner");
        }
        _version = w.Version;
        Serve();
    }

    void Serve()
    {
        while (_queue.Count > 0)
        {
            var (r, replyTo, received) = _queue.Peek();
            if (_version < r.MinVersion) return; // wait for the weights the request needs
            _queue.Dequeue();
            if (r.ExactVersion && _version != r.MinVersion) continue; // the learner has moved past this request
            // The learner already cut the micro-batch into one part per rollout worker: one request is one generation call.
            RolloutBatch batch;
            string[]? greedy;
            var waited = Stopwatch.GetElapsedTime(received).TotalSeconds;
            var started = Stopwatch.GetTimestamp();
            try
            {
                batch = _rollouts.Generate([.. r.ImageIds], _version, unchecked((ulong)r.Seed));
                greedy = _rollouts.GreedyCaptions([.. r.ImageIds]);
            }
            catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or InvalidOperationException)
            {
                // A failed generation loses this request only: the learner sends it again after its timeout. Letting the
                // actor restart instead would drop its learner, weights and queue, and the learner still counts it registered.
                _log.Error(e, "{0}: rollout {1} failed ({2}); the learner will send it again", Self.Path.Name, r.RequestId, e.Message);
                continue;
            }
            replyTo.Tell(RolloutResult.From(r.RequestId, batch, greedy, _node, _s.Device, waited, Stopwatch.GetElapsedTime(started).TotalSeconds));
            _served++;
        }
    }
}
