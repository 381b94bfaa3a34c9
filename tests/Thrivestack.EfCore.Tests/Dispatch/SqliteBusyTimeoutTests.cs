using System.Collections.Concurrent;
using System.Data.Common;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// On SQLite the dispatcher sets <c>PRAGMA busy_timeout = 5000</c> on its own connections, so its writes wait inside SQLite
/// for the app's write lock instead of taking Microsoft.Data.Sqlite's 150 ms retry sleeps (a connection starts with 0).
/// </summary>
public sealed class SqliteBusyTimeoutTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync(new SqliteTestDatabase());

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_SqliteAcknowledgement_RunsOnAConnectionWithBusyTimeout5000()
    {
        var probe = new BusyTimeoutProbe();
        var host = harness.BuildHost(
            o => o.MaxConcurrentRequests = 1,
            services: s => s.ConfigureDbContext<TestDbContext>(o => o.AddInterceptors(probe)));
        await host.StartAsync();

        // Two pages, one after the other: each runs on a context (and, without pooling, a connection) of its own.
        await DispatchHarness.SaveUsersAsync(host, 1, "first");
        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        await DispatchHarness.SaveUsersAsync(host, 1, "second");
        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);

        var seen = probe.Seen.ToArray();
        Assert.InRange(seen.Length, 2, int.MaxValue);
        Assert.All(seen, timeout => Assert.Equal(5000L, timeout));
    }

    /// <summary>
    /// On each acknowledgement (the dispatcher's DELETE of delivered outbox rows, an EF command), reads the busy timeout of
    /// the connection it runs on, in its transaction if it has one.
    /// </summary>
    private sealed class BusyTimeoutProbe : CommandWatcher
    {
        public ConcurrentQueue<long> Seen { get; } = new();

        protected override void Executing(DbCommand command)
        {
            if (!command.CommandText.TrimStart().StartsWith("DELETE FROM", StringComparison.OrdinalIgnoreCase)
                || !command.CommandText.Contains("thrivestack_outbox", StringComparison.Ordinal))
            {
                return;
            }

            using var pragma = command.Connection!.CreateCommand();
            pragma.Transaction = command.Transaction;
            pragma.CommandText = "PRAGMA busy_timeout;";
            Seen.Enqueue(Convert.ToInt64(pragma.ExecuteScalar()));
        }
    }
}
