using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>SQLite files for the drains: the schema from the model, a fast fill that copies a captured row, fresh copies.</summary>
internal static class SqliteBench
{
    public const string Outbox = "\"thrivestack_outbox\"";

    /// <summary>
    /// <c>PRAGMA synchronous</c> for every connection: <c>FULL</c> is SQLite's default (an fsync per commit),
    /// <c>NORMAL</c> is the usual production choice with WAL (no fsync per commit).
    /// </summary>
    public static string Synchronous { get; set; } = "FULL";

    /// <summary>
    /// <c>PRAGMA busy_timeout</c> in ms for every connection, 0 to leave SQLite's default (none). Without it a
    /// writer that finds the database locked gets SQLITE_BUSY, and Microsoft.Data.Sqlite retries after 150 ms sleeps.
    /// </summary>
    public static int BusyTimeout { get; set; }

    private static string Pragmas => $"PRAGMA synchronous = {Synchronous};" + (BusyTimeout > 0 ? $" PRAGMA busy_timeout = {BusyTimeout};" : "");

    public static string NewPath(string name) => Path.Combine(Path.GetTempPath(), $"thrivestack-bench-{name}-{Guid.NewGuid():N}.db");

    public static string ConnectionString(string path) =>
        new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 60 }.ToString();

    public static DbContextOptionsBuilder Configure(DbContextOptionsBuilder options, string path, bool interceptor)
    {
        options.UseSqlite(ConnectionString(path)).AddInterceptors(new PragmaInterceptor());
        if (interceptor)
        {
            options.AddThrivestackIdentifyInterceptor();
        }

        return options;
    }

    public static BenchDbContext CreateContext(string path, bool interceptor) =>
        new((DbContextOptions<BenchDbContext>)Configure(new DbContextOptionsBuilder<BenchDbContext>(), path, interceptor).Options);

    /// <summary>
    /// A database with <paramref name="rows"/> pending identify rows of distinct users. The first row is written by
    /// the interceptor (a real user insert); the others copy all its columns with a new user id, in one transaction.
    /// </summary>
    public static void Fill(string path, int rows)
    {
        using (var context = CreateContext(path, interceptor: true))
        {
            context.Database.EnsureDeleted();
            context.Database.EnsureCreated();
            context.Users.Add(BenchUsers.New(0));
            context.SaveChanges();
        }

        using var connection = Open(path);
        using (var pragma = connection.CreateCommand())
        {
            pragma.CommandText = "PRAGMA synchronous = OFF;";
            pragma.ExecuteNonQuery();
        }

        using var transaction = connection.BeginTransaction();
        using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = $"""
            INSERT INTO {Outbox} ("user_id", "group_id", "kind", "payload", "payload_bytes", "created_at", "state", "attempts",
              "next_attempt_at", "lease_id", "lease_owner", "lease_expires_at", "delivered_at", "dead_lettered_at", "last_error")
            SELECT $user, "group_id", "kind", replace("payload", "user_id", $user), "payload_bytes", "created_at", "state", "attempts",
              "next_attempt_at", "lease_id", "lease_owner", "lease_expires_at", "delivered_at", "dead_lettered_at", "last_error"
            FROM {Outbox} WHERE "id" = 1
            """;
        var user = insert.Parameters.Add("$user", SqliteType.Text);
        insert.Prepare();
        for (var i = 1; i < rows; i++)
        {
            user.Value = Guid.NewGuid().ToString();
            insert.ExecuteNonQuery();
        }

        transaction.Commit();
        Checkpoint(connection);
    }

    /// <summary>
    /// Appends every row of the filled <paramref name="template"/> to the outbox of <paramref name="path"/> in one
    /// transaction (new ids, same columns), so a long-lived application or baseline loop finds a fresh backlog.
    /// </summary>
    public static void Refill(string path, string template)
    {
        using var connection = Open(path);
        using var command = connection.CreateCommand();
        command.CommandText = $"ATTACH DATABASE $template AS tpl;";
        command.Parameters.AddWithValue("$template", template);
        command.ExecuteNonQuery();
        command.Parameters.Clear();
        const string Columns = """
            "user_id", "group_id", "kind", "payload", "payload_bytes", "created_at", "state", "attempts", "next_attempt_at",
            "lease_id", "lease_owner", "lease_expires_at", "delivered_at", "dead_lettered_at", "last_error"
            """;
        command.CommandText = $"BEGIN IMMEDIATE; INSERT INTO main.{Outbox} ({Columns}) SELECT {Columns} FROM tpl.{Outbox} ORDER BY \"id\"; COMMIT;";
        command.ExecuteNonQuery();
        command.CommandText = "DETACH DATABASE tpl;";
        command.ExecuteNonQuery();
    }

    /// <summary>A fresh copy of a filled database, so every drain starts from the same data.</summary>
    public static string Copy(string source, string name)
    {
        SqliteConnection.ClearAllPools();
        var target = NewPath(name);
        File.Copy(source, target);
        return target;
    }

    public static void Execute(string path, string sql)
    {
        using var connection = Open(path);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public static long Pending(string path)
    {
        using var connection = Open(path);
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM {Outbox} WHERE \"state\" = 0";
        return (long)command.ExecuteScalar()!;
    }

    public static SqliteConnection Open(string path)
    {
        var connection = new SqliteConnection(ConnectionString(path));
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = Pragmas;
        pragma.ExecuteNonQuery();
        return connection;
    }

    public static void Delete(string path)
    {
        SqliteConnection.ClearAllPools();
        foreach (var file in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
        {
            try
            {
                File.Delete(file);
            }
            catch (IOException)
            {
            }
        }
    }

    private static void Checkpoint(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
        command.ExecuteNonQuery();
    }

    private sealed class PragmaInterceptor : DbConnectionInterceptor
    {
        public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData)
        {
            if (Synchronous != "FULL" || BusyTimeout > 0)
            {
                using var command = connection.CreateCommand();
                command.CommandText = Pragmas;
                command.ExecuteNonQuery();
            }
        }

        public override async Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            if (Synchronous != "FULL" || BusyTimeout > 0)
            {
                var command = connection.CreateCommand();
                await using (command)
                {
                    command.CommandText = Pragmas;
                    await command.ExecuteNonQueryAsync(cancellationToken);
                }
            }
        }
    }
}
