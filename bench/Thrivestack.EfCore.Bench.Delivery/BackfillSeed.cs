using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// Existing users (the columns <see cref="BenchUsers"/> sets) and memberships for the backfill scenario, written
/// straight into their tables (no interceptor, no outbox rows), as an application has them before it adopts the
/// library: every fifth user has one membership.
/// </summary>
internal static class BackfillSeed
{
    public const int UsersPerMembership = 5;

    public static long Memberships(int users) => users / UsersPerMembership;

    public static DbContextOptions<BenchDbContext> SqliteOptions(string path) =>
        (DbContextOptions<BenchDbContext>)SqliteBench.Configure(new DbContextOptionsBuilder<BenchDbContext>(), path, interceptor: false).Options;

    public static DbContextOptions<BenchDbContext> PgOptions(string connectionString) =>
        new DbContextOptionsBuilder<BenchDbContext>().UseNpgsql(connectionString).Options;

    public static void Sqlite(string path, int users)
    {
        using (var context = new BenchDbContext(SqliteOptions(path)))
        {
            context.Database.EnsureDeleted();
            context.Database.EnsureCreated();
        }

        using var connection = SqliteBench.Open(path);
        using (var pragma = connection.CreateCommand())
        {
            pragma.CommandText = "PRAGMA synchronous = OFF;";
            pragma.ExecuteNonQuery();
        }

        using var transaction = connection.BeginTransaction();
        using var user = connection.CreateCommand();
        user.Transaction = transaction;
        user.CommandText = $"""
            INSERT INTO "{BenchDbContext.UsersTable}" ("Id", "Email", "FirstName", "LastName", "Phones", "Age", "ActiveAt", "LoginCount", "Notes", "Address_City", "Address_Street")
            VALUES ($id, $email, 'Ada', 'Lovelace', '["+44 20 7946 0000"]', 36, $active, 0, 'created by the benchmark', 'London', '1 Analytical Way')
            """;
        var id = user.Parameters.Add("$id", SqliteType.Text);
        var email = user.Parameters.Add("$email", SqliteType.Text);
        user.Parameters.AddWithValue("$active", DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture));
        user.Prepare();
        using var member = connection.CreateCommand();
        member.Transaction = transaction;
        member.CommandText = $"""INSERT INTO "{BenchDbContext.MembershipsTable}" ("UserId", "WorkspaceId", "Role") VALUES ($user, $workspace, 'member')""";
        var memberUser = member.Parameters.Add("$user", SqliteType.Text);
        var workspace = member.Parameters.Add("$workspace", SqliteType.Text);
        member.Prepare();
        for (var i = 1; i <= users; i++)
        {
            // EF Core stores a Guid as upper-case text on SQLite.
            var key = Guid.NewGuid().ToString().ToUpperInvariant();
            id.Value = key;
            email.Value = $"user{i}@example.com";
            user.ExecuteNonQuery();
            if (i % UsersPerMembership == 0)
            {
                memberUser.Value = key;
                workspace.Value = Guid.NewGuid().ToString().ToUpperInvariant();
                member.ExecuteNonQuery();
            }
        }

        transaction.Commit();
        using var checkpoint = connection.CreateCommand();
        checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;";
        checkpoint.ExecuteNonQuery();
    }

    public static async Task PgAsync(string connectionString, int users, string? outboxStorage = null)
    {
        await using (var context = new BenchDbContext(PgOptions(connectionString)))
        {
            await context.Database.EnsureCreatedAsync();
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var seed = new NpgsqlCommand(
            $"""
            INSERT INTO "{BenchDbContext.UsersTable}" ("Id", "Email", "FirstName", "LastName", "Phones", "Age", "ActiveAt", "LoginCount", "Notes", "Address_City", "Address_Street")
            SELECT gen_random_uuid(), 'user' || n || '@example.com', 'Ada', 'Lovelace', ARRAY['+44 20 7946 0000'], 36, now(), 0,
                'created by the benchmark', 'London', '1 Analytical Way'
            FROM generate_series(1, @users) AS n;
            INSERT INTO "{BenchDbContext.MembershipsTable}" ("UserId", "WorkspaceId", "Role")
            SELECT u."Id", gen_random_uuid(), 'member'
            FROM (SELECT "Id", row_number() OVER () AS n FROM "{BenchDbContext.UsersTable}") AS u
            WHERE u.n % {UsersPerMembership} = 0;
            """,
            connection);
        seed.CommandTimeout = 600;
        seed.Parameters.AddWithValue("users", users);
        await seed.ExecuteNonQueryAsync();
        await using var vacuum = new NpgsqlCommand("VACUUM ANALYZE", connection) { CommandTimeout = 600 };
        await vacuum.ExecuteNonQueryAsync();
        if (outboxStorage is { Length: > 0 })
        {
            // Storage parameters of the outbox table, as an application would set them in a migration (--outbox-storage).
            await using var alter = new NpgsqlCommand($"ALTER TABLE thrivestack_outbox SET ({outboxStorage})", connection);
            await alter.ExecuteNonQueryAsync();
        }
    }
}
