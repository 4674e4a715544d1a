using Microsoft.Data.Sqlite;
using Npgsql;

namespace Scst.Actors.Persistence;

/// <summary>
/// Checks a journal before the actor system touches it, so a damaged or unreachable store fails with a message
/// naming the file or server instead of Akka.Persistence retrying, logging and carrying on.
/// </summary>
public static class JournalPreflight
{
    static readonly byte[] SqliteMagic = "SQLite format 3\0"u8.ToArray();

    /// <summary>Verifies an existing SQLite file (header, quick_check) and switches it to WAL; creates the folder if needed.</summary>
    public static void PrepareSqlite(string file)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
        if (File.Exists(file))
        {
            var len = new FileInfo(file).Length;
            if (len > 0)
            {
                var head = new byte[16];
                using (var fs = File.OpenRead(file)) fs.ReadExactly(head, 0, Math.Min(16, (int)Math.Min(len, 16)));
                if (len < 100 || !head.AsSpan().SequenceEqual(SqliteMagic))
                    throw new JournalCorruptException($"journal file '{file}' is not a SQLite database (bad header, {len} bytes). Move it away or choose another --run-dir.");
            }
        }
        try
        {
            using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = file, Pooling = false }.ToString());
            c.Open();
            using (var check = c.CreateCommand())
            {
                check.CommandText = "PRAGMA quick_check;";
                var problems = new List<string>();
                using (var r = check.ExecuteReader())
                    while (r.Read()) problems.Add(r.GetString(0));
                if (problems is not ["ok"])
                    throw new JournalCorruptException($"journal file '{file}' is damaged (SQLite quick_check: {string.Join("; ", problems.Take(5))}). Move it away or choose another --run-dir.");
            }
            using var wal = c.CreateCommand();
            // WAL lets recovery reads run beside the single writer; the mode is stored in the file.
            wal.CommandText = "PRAGMA journal_mode=WAL;";
            wal.ExecuteNonQuery();
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 13 || e.SqliteErrorCode == 10 && NearlyFull(file))
        {
            // SQLITE_FULL, or an I/O error (WAL's shared memory cannot grow) on a full disk: the file is fine, the disk is not.
            throw new IOException($"journal file '{file}': No space left on device (SQLite: {e.Message})", e) { HResult = 28 };
        }
        catch (SqliteException e)
        {
            throw new JournalCorruptException($"journal file '{file}' cannot be used: {e.Message} (SQLite error {e.SqliteErrorCode}). Move it away or choose another --run-dir.", e);
        }
    }

    static bool NearlyFull(string file)
    {
        try { return new DriveInfo(Path.GetDirectoryName(Path.GetFullPath(file))!).AvailableFreeSpace < (1L << 20); }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>Opens one connection so a wrong host, password or database is reported up front.</summary>
    public static void CheckPostgres(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        try
        {
            using var c = new NpgsqlConnection(connectionString);
            c.Open();
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or ArgumentException)
        {
            throw new JournalUnavailableException($"cannot open the PostgreSQL journal at host={b.Host} port={b.Port} database={b.Database} user={b.Username}: {e.Message}", e);
        }
    }
}

public sealed class JournalCorruptException(string message, Exception? inner = null) : Exception(message, inner);
public sealed class JournalUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
