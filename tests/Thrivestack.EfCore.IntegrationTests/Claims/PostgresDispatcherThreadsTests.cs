using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Claims;

/// <summary>
/// Npgsql's asynchronous calls do not block their thread: on PostgreSQL the dispatcher keeps no threads of its own (on
/// SQLite it runs claims and acknowledgements on two, see the fast suite's DispatcherThreadsTests).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresDispatcherThreadsTests(PostgresServer server) : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync(await PostgresTestDatabase.CreateAsync(server));

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_OnPostgres_RunsItsStatementsOnTheThreadPool()
    {
        var seen = await CommandThreadProbe.WatchDrainAsync(harness, 300, Deadline);

        Assert.Contains(seen, c => c.Text == CommandThreadProbe.Opened);
        Assert.Contains(seen, c => c.Text.StartsWith("DELETE", StringComparison.OrdinalIgnoreCase));
        Assert.All(seen, c => Assert.True(c.OnThreadPool, $"'{c.Text}' ran on the thread '{c.Thread}', not on the thread pool"));
    }
}
