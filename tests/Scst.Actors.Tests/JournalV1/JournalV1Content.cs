using Akka.Actor;
using Akka.Persistence;
using Scst.Actors.Pipeline;

namespace Scst.Actors.Tests.JournalV1;

/// <summary>
/// What tests/data/journal-v1/journal.db holds of today's actors: the learner events its writer persisted
/// (JournalV1Writer, removed with the data shards after main 3c375b5; see tests/data/journal-v1/README.md).
/// </summary>
public static class JournalV1Content
{
    public static readonly string DataDir = FindDataDir();

    static string FindDataDir()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Directory.Packages.props"))) return Path.Combine(d.FullName, "tests", "data", "journal-v1");
        throw new DirectoryNotFoundException("repository root (Directory.Packages.props) not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Learner events as the learner persists them (<see cref="LearnerActor.PersistenceIdValue"/>).</summary>
    public static readonly LearnerStepApplied[] LearnerSteps =
    [
        new(1, 1, 0, 4, [2, 2], [0, 0], [7, 3, 1, 9], [], [], [], 0),
        new(2, 2, 0, 8, [4], [0], [0, 5, 2, 6], [2], [1], [11, 12], 1),
        new(3, 4, 1, 2, [2, 2], [0, 1], [4, 8, 13, 10], [], [], [], 3),
    ];

    /// <summary>Persists given events under a persistence id, or (with none) collects what recovery replays.</summary>
    public sealed class EventProbe : ReceivePersistentActor
    {
        readonly string _id;
        readonly List<object> _replayed = [];
        public override string PersistenceId => _id;

        public EventProbe(string id, object[] toPersist)
        {
            _id = id;
            Recover<object>(e => { if (e is not RecoveryCompleted) _replayed.Add(e); });
            Command<string>(cmd =>
            {
                var sender = Sender;
                if (cmd == "replayed") { sender.Tell(_replayed.ToArray()); return; }
                PersistAll(toPersist, _ => { });
                DeferAsync("done", _ => sender.Tell("done"));
            });
        }

        public static Props Props(string id, params object[] toPersist) => Akka.Actor.Props.Create(() => new EventProbe(id, toPersist));
    }
}
