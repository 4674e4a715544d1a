using System.Text;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Persistence.Hosting;
using Akka.Persistence.Sql;

namespace Scst.Host.Cluster;

/// <summary>
/// Akka.Persistence.Sql's journal ("akka.persistence.journal.sql") as Akka.Persistence.Hosting options.
/// Akka.Persistence.Sql.Hosting would provide this, but it is served only at 1.5.70 and every Akka package here is
/// 1.5.73; this carries only what the node sets. Everything else (table and column names, serializer, batch sizes)
/// stays the plugin's own default, so journals written before keep replaying.
/// </summary>
public sealed class SqlJournalPluginOptions : JournalOptions
{
    const string Path = "akka.persistence.journal.sql";
    readonly string _providerName, _connectionString;
    readonly int? _parallelism;

    public SqlJournalPluginOptions(string providerName, string connectionString, int? parallelism) : base(isDefault: true)
    {
        (_providerName, _connectionString, _parallelism) = (providerName, connectionString, parallelism);
        AutoInitialize = true;
        // JournalOptions writes its own serializer key; keep the plugin's (payloads go by the type bindings).
        Serializer = SqlPersistence.DefaultConfiguration.GetString(Path + ".serializer", null);
    }

    public override string Identifier { get; set; } = "sql";
    protected override Config InternalDefaultConfig => SqlPersistence.DefaultConfiguration.GetConfig(Path);

    protected override StringBuilder Build(StringBuilder sb) => base.Build(SqlPluginSettings.Append(sb, _providerName, _connectionString, _parallelism));
}

/// <summary>Akka.Persistence.Sql's snapshot store ("akka.persistence.snapshot-store.sql"); see <see cref="SqlJournalPluginOptions"/>.</summary>
public sealed class SqlSnapshotPluginOptions : SnapshotOptions
{
    const string Path = "akka.persistence.snapshot-store.sql";
    readonly string _providerName, _connectionString;

    public SqlSnapshotPluginOptions(string providerName, string connectionString) : base(isDefault: true)
    {
        (_providerName, _connectionString) = (providerName, connectionString);
        AutoInitialize = true;
        Serializer = SqlPersistence.DefaultConfiguration.GetString(Path + ".serializer", null);
    }

    public override string Identifier { get; set; } = "sql";
    protected override Config InternalDefaultConfig => SqlPersistence.DefaultConfiguration.GetConfig(Path);

    protected override StringBuilder Build(StringBuilder sb) => base.Build(SqlPluginSettings.Append(sb, _providerName, _connectionString, null));
}

/// <summary>The settings both SQL plugins take from <see cref="ScstClusterOptions"/>; the rest keep the plugin's defaults.</summary>
static class SqlPluginSettings
{
    public static StringBuilder Append(StringBuilder sb, string providerName, string connectionString, int? parallelism)
    {
        sb.AppendLine($"provider-name = {providerName.ToHocon()}");
        sb.AppendLine($"connection-string = {connectionString.ToHocon()}");
        if (parallelism is { } p) sb.AppendLine($"parallelism = {p}");
        return sb;
    }
}
