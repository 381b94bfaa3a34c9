using System.Collections.Concurrent;
using Npgsql;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>
/// A PostgreSQL server for integration tests: the server named by <see cref="ExternalServerVariable"/>,
/// or else a throwaway local one that is deleted afterwards.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    public const string ExternalServerVariable = "THRIVESTACK_TEST_POSTGRES";
    public const string LocalHost = "127.0.0.1";

    private readonly ConcurrentBag<string> externalDatabases = [];
    private LocalCluster? cluster;
    private string? externalAdmin;

    public string AdminConnectionString =>
        cluster?.AdminConnectionString ?? externalAdmin ?? throw new InvalidOperationException("The server is not initialized.");

    public string Host => new NpgsqlConnectionStringBuilder(AdminConnectionString).Host ?? LocalHost;

    public int Port => new NpgsqlConnectionStringBuilder(AdminConnectionString).Port;

    public bool CanRestart => cluster is not null;

    public async Task InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable(ExternalServerVariable);
        if (string.IsNullOrWhiteSpace(external))
        {
            cluster = await LocalCluster.StartNewAsync();
            return;
        }

        var builder = new NpgsqlConnectionStringBuilder(external);
        if (string.IsNullOrEmpty(builder.Database))
        {
            builder.Database = "postgres";
        }

        externalAdmin = builder.ConnectionString;
        // Also covers a CI service container that is still starting.
        await ReadinessProbe.WaitAsync(
            externalAdmin,
            TimeSpan.FromSeconds(60),
            () => $"Check the connection string in {ExternalServerVariable}, or unset it to start a throwaway server.");
    }

    public async Task<string> CreateDatabaseAsync(string? prefix = null)
    {
        var name = DatabaseName.Create(prefix);
        await using (var connection = new NpgsqlConnection(ConnectionStrings.Unpooled(AdminConnectionString)))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }

        if (cluster is null)
        {
            externalDatabases.Add(name);
        }

        return ConnectionStrings.ForDatabase(AdminConnectionString, name);
    }

    /// <summary>Stops the server (fast shutdown) to simulate an outage. Pools are left alone on purpose.</summary>
    public Task StopAsync() => RestartableCluster().StopAsync();

    /// <summary>Starts the server again on the same port and data folder, once it accepts connections.</summary>
    public Task StartAsync() => RestartableCluster().StartAsync();

    public async Task DisposeAsync()
    {
        if (cluster is not null)
        {
            await cluster.DisposeAsync();
            return;
        }

        if (externalAdmin is not null)
        {
            await DropExternalDatabasesAsync(externalAdmin);
        }
    }

    private LocalCluster RestartableCluster() =>
        cluster ?? throw new NotSupportedException(
            $"Cannot stop or start an external server ({ExternalServerVariable} is set); check {nameof(CanRestart)} first.");

    // Best effort: a shared server should not fill up with test databases.
    private async Task DropExternalDatabasesAsync(string admin)
    {
        try
        {
            await using var connection = new NpgsqlConnection(ConnectionStrings.Unpooled(admin));
            await connection.OpenAsync();
            foreach (var name in externalDatabases)
            {
                await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
                await command.ExecuteNonQueryAsync();
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // Leftover databases are harmless; failing the run over them is not.
        }
    }
}
