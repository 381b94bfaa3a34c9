using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>A fresh database on the throwaway PostgreSQL server.</summary>
public sealed class PostgresTestDatabase(string connectionString) : TestDatabase
{
    public string ConnectionString { get; } = connectionString;

    public static async Task<PostgresTestDatabase> CreateAsync(PostgresServer server) =>
        new(await server.CreateDatabaseAsync("thrivestack"));

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

    protected override void ConfigureProvider(DbContextOptionsBuilder builder) => builder.UseNpgsql(ConnectionString);

    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
