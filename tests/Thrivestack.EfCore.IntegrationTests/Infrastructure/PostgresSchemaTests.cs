namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>Tests that each get a database of their own on the shared server, with the test model's schema created.</summary>
public abstract class PostgresSchemaTests(PostgresServer server) : IAsyncLifetime
{
    protected PostgresTestDatabase Database { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Database = await PostgresTestDatabase.CreateAsync(server);
        await Database.CreateSchemaAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;
}
