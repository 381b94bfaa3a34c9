using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Testing;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Claims;

/// <summary>
/// README, "Scale-out on PostgreSQL": no database transaction stays open during the HTTP call. A transaction held across a
/// round trip to ThriveStack would hold row locks and the vacuum horizon for as long as ThriveStack takes to answer.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresNoTransactionDuringSendTests(PostgresServer server) : PostgresSchemaTests(server)
{
    [Fact]
    public async Task Dispatcher_RequestInFlight_HoldsNoTransactionOpen()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        // Under RequestTimeout (10 s), so the held request is answered, not retried.
        standIn.Faults.Latency = TimeSpan.FromSeconds(5);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddDbContext<TestDbContext>(o => Database.Configure(o.AddThrivestackIdentifyInterceptor()));
        builder.Services.AddThrivestackIdentify<TestDbContext>(o =>
        {
            o.Endpoint = standIn.Endpoint;
            o.ApiToken = standIn.ApiToken;
        });
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            await using (var context = Database.CreateContext())
            {
                context.EnqueueThrivestackIdentify("ada", new Dictionary<string, object?> { ["email"] = "ada@example.com" });
                await context.SaveChangesAsync();
            }

            await standIn.WaitUntilAsync(s => s.InFlightRequestCount == 1, TimeSpan.FromSeconds(30));
            var open = await OpenTransactionsAsync();
            // The request was still held when the server was asked, so the answer is about the time of the send.
            Assert.Equal(1, standIn.InFlightRequestCount);
            Assert.Empty(open);

            await standIn.WaitForEventsAsync(1, TimeSpan.FromSeconds(60));
        }
        finally
        {
            await host.StopAsync();
        }
    }

    /// <summary>Sessions of the test's database, other than this one, inside a transaction: their state and query.</summary>
    private async Task<List<string>> OpenTransactionsAsync()
    {
        await using var connection = new NpgsqlConnection(Database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            """
            SELECT state || ': ' || left(query, 80) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
            """,
            connection);
        var sessions = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            sessions.Add(reader.GetString(0));
        }

        return sessions;
    }
}
