using Akka.Actor;
using Scst.Actors.Pipeline;

namespace Scst.Host.Cluster;

/// <summary>
/// The submitting process's end of a run: sends <see cref="StartRun"/> through the learner region until the run's
/// entity accepts it, then <see cref="WatchRun"/> every few seconds (an entity that moved to another learner node
/// forgets its watchers), and completes <see cref="Ended"/> with the run's <see cref="RunEnded"/>, or fails it with
/// the refusal.
/// </summary>
public sealed class RunSubmitter : ReceiveActor, IWithTimers
{
    sealed record Again { public static readonly Again Instance = new(); }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef region, StartRun start, TaskCompletionSource<RunEnded> ended, Action<RunAccepted> accepted) =>
        Akka.Actor.Props.Create(() => new RunSubmitter(region, start, ended, accepted));

    public RunSubmitter(IActorRef region, StartRun start, TaskCompletionSource<RunEnded> ended, Action<RunAccepted> accepted)
    {
        var runId = start.Spec.RunId;
        RunAccepted? current = null;
        Receive<Again>(_ => LearnerRegion.Tell(region, runId, current is null ? start : WatchRun.Instance, Self));
        Receive<RunAccepted>(a =>
        {
            // Said again when the run restarts on another node.
            if (current is null || current.Node != a.Node) accepted(a);
            current = a;
        });
        Receive<RunRefused>(r =>
        {
            ended.TrySetException(new ArgumentException($"run '{r.RunId}' refused: {r.Reason}"));
            Context.Stop(Self);
        });
        Receive<RunEnded>(e =>
        {
            ended.TrySetResult(e);
            Context.Stop(Self);
        });
        Timers.StartPeriodicTimer("again", Again.Instance, TimeSpan.Zero, TimeSpan.FromSeconds(2));
    }
}
