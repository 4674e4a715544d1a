using Akka.Actor;
using Scst.Actors.Persistence;
using Scst.Actors.Pipeline;

namespace Scst.Actors.Tests;

public class JournalPreflightTests
{
    [Fact]
    public void Garbage_file_is_refused_with_its_path()
    {
        var f = Path.Combine(TestNodes.NewRunDir(), "journal.db");
        File.WriteAllBytes(f, Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray());
        var e = Assert.Throws<JournalCorruptException>(() => JournalPreflight.PrepareSqlite(f));
        Assert.Contains(f, e.Message);
        Assert.Contains("not a SQLite database", e.Message);
    }

    [Fact]
    public async Task Truncated_journal_is_refused_not_reused()
    {
        var run = TestNodes.NewRunDir();
        var sys = TestNodes.Start(run);
        try
        {
            // 200 learner steps, each with a batch of image ids: a journal of several pages to cut in half.
            var steps = Enumerable.Range(1, 200)
                .Select(u => (object)new LearnerStepApplied(u, u, 0, 5 * u, [5], [0], [.. Enumerable.Range(5 * u, 5)], [], [], [], 0)).ToArray();
            var probe = sys.ActorOf(JournalV1.JournalV1Content.EventProbe.Props(LearnerActor.PersistenceIdValue, steps));
            Assert.Equal("done", await probe.Ask<string>("persist", TimeSpan.FromSeconds(60)));
        }
        finally { TestNodes.Stop(sys); }
        var f = Path.Combine(run, "journal.db");
        // Fold the WAL back in, then cut the file in half as a crashed copy or full disk would.
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        JournalPreflight.PrepareSqlite(f);
        using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={f};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;";
            cmd.ExecuteNonQuery();
        }
        var len = new FileInfo(f).Length;
        Assert.True(len > 8192, $"journal only {len} bytes");
        using (var fs = new FileStream(f, FileMode.Open)) fs.SetLength(len / 2);
        var e = Assert.Throws<JournalCorruptException>(() => JournalPreflight.PrepareSqlite(f));
        Assert.Contains(f, e.Message);
    }

    [Fact]
    public void Unreachable_postgres_names_host_and_database()
    {
        var e = Assert.Throws<JournalUnavailableException>(() =>
            JournalPreflight.CheckPostgres("Host=127.0.0.1;Port=1;Database=scst_nowhere;Username=nobody;Timeout=2"));
        Assert.Contains("scst_nowhere", e.Message);
        Assert.Contains("port=1", e.Message);
    }
}
