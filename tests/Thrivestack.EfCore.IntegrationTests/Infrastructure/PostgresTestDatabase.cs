using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>A fresh database on the throwaway PostgreSQL server.</summary>
public sealed class PostgresTestDatabase(string connectionString) : TestDatabase
{
    public string ConnectionString { get; } = connectionString;

    public static async Task<PostgresTestDatabase> CreateAsync(PostgresServer server) =>
        new(await server.CreateDatabaseAsync("thrivestack"));

    protected override void ConfigureProvider(DbContextOptionsBuilder builder) => builder.UseNpgsql(ConnectionString);

    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
