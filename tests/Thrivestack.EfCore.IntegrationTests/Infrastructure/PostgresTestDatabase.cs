using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Npgsql;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>
/// A fresh database on the throwaway PostgreSQL server. <paramref name="portable"/>: its contexts claim with the portable
/// claim (<see cref="PortableModelInitializer"/>), the one of SQL Server and MySQL, whose concurrency PostgreSQL's READ
/// COMMITTED shows as SQL Server's snapshot isolation would (an UPDATE re-checks its own rows, its subqueries do not).
/// </summary>
public sealed class PostgresTestDatabase(string connectionString, bool portable = false) : TestDatabase
{
    public string ConnectionString { get; } = connectionString;

    public static async Task<PostgresTestDatabase> CreateAsync(PostgresServer server, bool portable = false) =>
        new(await server.CreateDatabaseAsync("thrivestack"), portable);

    /// <summary>Runs SQL on a connection of its own (no EF, no <see cref="TestDatabase.Activity"/> signal).</summary>
    public async Task ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        await command.ExecuteNonQueryAsync();
    }

    public override DbConnection CreateConnection() => new NpgsqlConnection(ConnectionString);

    protected override void ConfigureProvider(DbContextOptionsBuilder builder)
    {
        builder.UseNpgsql(ConnectionString);
        if (portable)
        {
            builder.ReplaceService<IModelRuntimeInitializer, PortableModelInitializer>();
        }
    }

    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
