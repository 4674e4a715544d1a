using Akka.Actor;
using Npgsql;
using Scst.Actors.Data;
using Scst.Actors.Persistence;

namespace Scst.Actors.Tests;

/// <summary>
/// The same journal guarantees on PostgreSQL. Needs env SCST_TEST_POSTGRES (an admin connection string, e.g.
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
    public async Task Data_shards_resume_from_a_postgres_journal_exactly_once()
    {
        var (cs, drop) = CreateDatabase();
        try
        {
            var settings = new DataShardSettings(3, 40, 9, TimeSpan.FromMinutes(5));
            var consumed = new List<int>();
            Batch unacked;
            var sys = TestNodes.Start(TestNodes.NewRunDir(), extraHocon: Hocon(cs));
            try
            {
                await RunManifest.VerifyAsync(sys, new Dictionary<string, string> { ["data.shard-count"] = "3" }, "postgres journal", Ask);
                var region = DataShards.StartRegion(sys, settings);
                var a = await region.Ask<Batch>(new RequestBatch(0, 4), Ask);
                await region.Ask<BatchAcked>(new AckBatch(0, a.Seq), Ask);
                consumed.AddRange(a.ImageIds);
                unacked = await region.Ask<Batch>(new RequestBatch(0, 4), Ask);
            }
            finally { TestNodes.Stop(sys); }

            var sys2 = TestNodes.Start(TestNodes.NewRunDir(), extraHocon: Hocon(cs));
            try
            {
                await Assert.ThrowsAsync<RunConfigMismatchException>(() =>
                    RunManifest.VerifyAsync(sys2, new Dictionary<string, string> { ["data.shard-count"] = "5" }, "postgres journal", Ask));
                var region = DataShards.StartRegion(sys2, settings);
                var again = await region.Ask<Batch>(new RequestBatch(0, 4), Ask);
                Assert.Equal(unacked.Seq, again.Seq);
                Assert.Equal(unacked.ImageIds.ToArray(), again.ImageIds.ToArray());
                for (var b = again; ; b = await region.Ask<Batch>(new RequestBatch(0, 4), Ask))
                {
                    await region.Ask<BatchAcked>(new AckBatch(0, b.Seq), Ask);
                    consumed.AddRange(b.ImageIds);
                    if ((await region.Ask<ShardStatus>(new GetShardStatus(0), Ask)).Epoch > 0) break;
                }
                Assert.Equal(ShardOrder.Members(0, 3, 40), consumed.Order());
            }
            finally { TestNodes.Stop(sys2); }
        }
        finally { drop(); }
    }
}
