using Npgsql;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Claims;

/// <summary>An app transaction that locks an outbox row must not stall the dispatchers for everyone else.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresClaimLockTests(PostgresServer server) : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(40);

    private PostgresTestDatabase database = null!;
    private DispatchHarness harness = null!;

    public async Task InitializeAsync()
    {
        database = await PostgresTestDatabase.CreateAsync(server);
        harness = await DispatchHarness.StartAsync(database);
    }

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_AppLocksAPendingRowThatIsNotItsUsersOldest_OtherUsersAreDeliveredWhileTheLockIsHeld()
    {
        var others = Enumerable.Range(0, 150).Select(i => $"u{i:D3}").ToList();
        await harness.EnqueueAsync(
            new[] { "locked", "locked" }.Concat(others)
                .Select((u, i) => (u, (IReadOnlyDictionary<string, object?>?)new Dictionary<string, object?> { ["email"] = $"{u}.{i}@example.com" })));
        var newer = (await harness.RowsAsync()).Where(r => r.UserId == "locked").Max(r => r.Id);

        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var command = new NpgsqlCommand("SELECT 1 FROM \"thrivestack_outbox\" WHERE \"id\" = @id FOR UPDATE", connection, transaction))
        {
            command.Parameters.AddWithValue("id", newer);
            await command.ExecuteScalarAsync();
        }

        await harness.StartHostAsync(o => o.MaxEventsPerBatch = 50);

        await harness.StandIn.WaitUntilAsync(s => others.All(u => s.EventsFor(u).Count > 0), Deadline);
        Assert.Empty(harness.StandIn.EventsFor("locked"));
        Assert.All((await harness.RowsAsync()).Where(r => r.UserId == "locked"), r => Assert.Equal(OutboxRowState.Pending, r.State));

        await transaction.RollbackAsync();
        await harness.StandIn.WaitUntilAsync(s => s.EventsFor("locked").Count > 0, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
    }
}
