using System.Collections.Immutable;
using Akka.Actor;
using Akka.Persistence;

namespace Scst.Actors.Persistence;

/// <summary>
/// Journals the settings a run must keep for its whole life (data shard count, dataset size, seed, ...).
/// A later start with different values is refused with <see cref="RunManifestMismatch"/>, never silently reused.
/// New keys are added; existing keys never change.
/// </summary>
public sealed class RunManifestActor : ReceivePersistentActor
{
    public const string Id = "scst-run-manifest";
    ImmutableSortedDictionary<string, string> _entries = ImmutableSortedDictionary<string, string>.Empty.WithComparers(StringComparer.Ordinal);

    public override string PersistenceId => Id;

    public static Props Props() => Akka.Actor.Props.Create(() => new RunManifestActor());

    public RunManifestActor()
    {
        Recover<RunManifestRecorded>(e => _entries = _entries.SetItems(e.Entries));
        Command<VerifyRunManifest>(m =>
        {
            foreach (var (k, v) in m.Expected)
                if (_entries.TryGetValue(k, out var j) && j != v) { Sender.Tell(new RunManifestMismatch(k, j, v)); return; }
            var added = m.Expected.Where(p => !_entries.ContainsKey(p.Key)).ToImmutableSortedDictionary(StringComparer.Ordinal);
            if (added.IsEmpty) { Sender.Tell(new RunManifestOk(_entries)); return; }
            var sender = Sender;
            Persist(new RunManifestRecorded(added), e =>
            {
                _entries = _entries.SetItems(e.Entries);
                sender.Tell(new RunManifestOk(_entries));
            });
        });
    }
}

public static class RunManifest
{
    /// <summary>Start the manifest actor, verify, stop it. Throws <see cref="RunConfigMismatchException"/> on a mismatch.</summary>
    public static async Task<ImmutableSortedDictionary<string, string>> VerifyAsync(ActorSystem system, IReadOnlyDictionary<string, string> expected, string journalDescription, TimeSpan timeout)
    {
        var actor = system.ActorOf(RunManifestActor.Props(), "run-manifest-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var reply = await actor.Ask<object>(new VerifyRunManifest(expected.ToImmutableSortedDictionary(StringComparer.Ordinal)), timeout);
            return reply switch
            {
                RunManifestOk ok => ok.Journaled,
                RunManifestMismatch mm => throw new RunConfigMismatchException(
                    $"{journalDescription} was written with {mm.Key} = {mm.Journaled}, but this run asks {mm.Key} = {mm.Configured}. " +
                    $"Resume with {mm.Key} = {mm.Journaled}, or start a new run folder / database."),
                _ => throw new InvalidOperationException($"unexpected reply from the run manifest: {reply}"),
            };
        }
        finally { system.Stop(actor); }
    }
}

public sealed class RunConfigMismatchException(string message) : Exception(message);
