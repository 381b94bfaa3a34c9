using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// Microsoft.Data.Sqlite's asynchronous methods run on the caller's thread, and a write waiting for SQLite's lock sleeps
/// there: the dispatcher runs its claims and its acknowledgements on two threads of its own, so that they never hold up the
/// thread pool that the answers of its requests in flight (and the application's own requests) are waiting for.
/// </summary>
public sealed class DispatcherThreadsTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync(new SqliteTestDatabase());

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_OnSqlite_RunsEveryClaimAndAcknowledgementOnItsOwnThreads()
    {
        var seen = await CommandThreadProbe.WatchDrainAsync(harness, 300, Deadline);

        Assert.Equal(300, harness.StandIn.Events.Count);
        Assert.DoesNotContain(seen, c => c.OnThreadPool);
        var claims = seen.Where(c => c.Thread == "Thrivestack claims (TestDbContext)").Select(c => c.Text).ToArray();
        var writes = seen.Where(c => c.Thread == "Thrivestack acknowledgements (TestDbContext)").Select(c => c.Text).ToArray();
        Assert.Equal(seen.Length, claims.Length + writes.Length);

        // The claim's read of the outbox, the outbox-wide lease taken, and given back at the stop (SQLite's trace sees them:
        // they go straight to the connection, past EF's command interceptors).
        Assert.Contains(claims, t => t.StartsWith(CommandThreadProbe.Statement + "SELECT", StringComparison.Ordinal) && t.Contains("\"thrivestack_outbox\"", StringComparison.Ordinal) && !t.Contains("COUNT(*)", StringComparison.Ordinal));
        Assert.Contains(claims, t => t.StartsWith(CommandThreadProbe.Statement + "INSERT INTO \"thrivestack_backfill\"", StringComparison.Ordinal));
        Assert.Contains(claims, t => t.StartsWith(CommandThreadProbe.Statement + "UPDATE \"thrivestack_backfill\" SET \"lock_owner\" = NULL", StringComparison.Ordinal));

        // The acknowledgements (DELETEs of delivered rows, retention being zero), and the leader's housekeeping (the pending
        // count), on the other thread: a claim does not queue behind them.
        Assert.Contains(writes, t => t.StartsWith("DELETE FROM \"thrivestack_outbox\"", StringComparison.Ordinal));
        Assert.Contains(writes, t => t.StartsWith(CommandThreadProbe.Statement + "SELECT COUNT(*)", StringComparison.Ordinal));
        Assert.DoesNotContain(claims, t => t.Contains("DELETE", StringComparison.Ordinal) || t.Contains("COUNT(*)", StringComparison.Ordinal));
    }
}
