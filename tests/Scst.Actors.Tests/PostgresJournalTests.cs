using Akka.Actor;
using Npgsql;
using Scst.Actors.Pipeline;

namespace Scst.Actors.Tests;

/// <summary>
/// The learner's journal on PostgreSQL. Needs env SCST_TEST_POSTGRES (an admin connection string, e.g.
/// "Host=127.0.0.1;Port=5433;Username=postgres;Database=postgres"); each test creates and drops its own database.
/// </summary>
public class PostgresJournalTests
{
    static readonly TimeSpan Ask = TimeSpan.FromSeconds(30);

    static string? Admin => Environment.GetEnvironmentVariable("SCST_TEST_POSTGRES");

    static (string cs, Action drop) CreateDatabase()
    {
        Skip.If(string.IsNullOrWhiteSpace(Admin), "SCST_TEST_POSTGRES is not set: PostgreSQL journal tests skipped");
        var name = "scst_test_" + Guid.NewGuid().ToString("N")[..12];
        using (var c = new NpgsqlConnection(Admin)) { c.Open(); using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c); cmd.ExecuteNonQuery(); }
        var cs = new NpgsqlConnectionStringBuilder(Admin) { Database = name, Pooling = false }.ConnectionString;
        return (cs, () =>
        {
            using var c = new NpgsqlConnection(Admin);
            c.Open();
            using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", c);
            cmd.ExecuteNonQuery();
        });
    }

    static string Hocon(string cs) => $"scst.persistence {{ backend = postgresql, connection-string = \"{cs}\" }}";

    [SkippableFact]
    public async Task Learner_events_replay_from_a_postgres_journal_after_a_restart()
    {
        var (cs, drop) = CreateDatabase();
        try
        {
            var steps = JournalV1.JournalV1Content.LearnerSteps;
            var sys = TestNodes.Start(TestNodes.NewRunDir(), extraHocon: Hocon(cs));
            try
            {
                var writer = sys.ActorOf(JournalV1.JournalV1Content.EventProbe.Props(LearnerActor.PersistenceIdValue, steps));
                Assert.Equal("done", await writer.Ask<string>("persist", Ask));
            }
            finally { TestNodes.Stop(sys); }

            // A fresh node with an empty run folder: everything it recovers comes from PostgreSQL.
            var sys2 = TestNodes.Start(TestNodes.NewRunDir(), extraHocon: Hocon(cs));
            try
            {
                var reader = sys2.ActorOf(JournalV1.JournalV1Content.EventProbe.Props(LearnerActor.PersistenceIdValue));
                var replayed = await reader.Ask<object[]>("replayed", Ask);
                Assert.Equal(steps.Length, replayed.Length);
                for (int i = 0; i < steps.Length; i++) SerializerTests.AssertEquivalent(steps[i], replayed[i]);
            }
            finally { TestNodes.Stop(sys2); }
        }
        finally { drop(); }
    }
}
