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
        var claims = seen.Where(c => c.Thread == "Thrivestack claims (TestDbContext)").ToArray();
        var writes = seen.Where(c => c.Thread == "Thrivestack acknowledgements (TestDbContext)").ToArray();
        Assert.Equal(seen.Length, claims.Length + writes.Length);

        // A claim opens its page's connection (its statements go straight to the connection, past EF's command interceptors).
        Assert.Contains(claims, c => c.Text == CommandThreadProbe.Opened);

        // Every acknowledgement (a DELETE of delivered rows, retention being zero) on the acknowledgements' thread.
        Assert.NotEmpty(writes);
        Assert.All(writes, c => Assert.StartsWith("DELETE", c.Text, StringComparison.OrdinalIgnoreCase));
    }
}
