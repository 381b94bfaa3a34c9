using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Thrivestack.EfCore.IntegrationTests.Scale;

/// <summary>Database and ThriveStack outages, and long business transactions, on a real PostgreSQL server.</summary>
[Collection(PostgresCollection.Name)]
public sealed class OutageTests(PostgresServer server, ITestOutputHelper output) : IAsyncLifetime
{
    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync(await PostgresTestDatabase.CreateAsync(server));

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_DatabaseStoppedAndStartedMidDrain_RecoversWithoutRestartAndLogsOneErrorPerOutage()
    {
        Assert.True(server.CanRestart, "this test stops the server; run it against the throwaway server");
        const int Users = 2_000, EventsPerUser = 2, Total = Users * EventsPerUser;
        await Workload.EnqueueAsync(harness.Database, Users, EventsPerUser);
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(10);
        await harness.StartHostAsync(o =>
        {
            o.MaxEventsPerBatch = 50;

            // Rows claimed when the database went away come back when their lease ends.
            o.LeaseDuration = TimeSpan.FromSeconds(5);
            o.RequestTimeout = TimeSpan.FromSeconds(2);
            o.MaxRequestRetries = 0;
        });
        await harness.StandIn.WaitUntilAsync(s => s.AcceptedEventCount >= 500, TimeSpan.FromSeconds(60));

        await server.StopAsync();
        try
        {
            await harness.StandIn.WaitUntilAsync(_ => Errors().Any(l => l.Category.StartsWith("Thrivestack", StringComparison.Ordinal)), TimeSpan.FromSeconds(60));

            // The outage lasts a while: the dispatcher keeps retrying against a stopped server.
            await Task.Delay(TimeSpan.FromSeconds(3));
        }
        finally
        {
            await server.StartAsync();
        }

        var restarted = Stopwatch.StartNew();
        var arrivedAtRestart = harness.StandIn.AcceptedEventCount;
        await harness.StandIn.WaitUntilAsync(s => s.AcceptedEventCount > arrivedAtRestart, TimeSpan.FromSeconds(60));
        var recovery = restarted.Elapsed;
        await harness.StandIn.WaitUntilAsync(_ => Workload.Count(harness.StandIn).Distinct == Total, TimeSpan.FromSeconds(120));

        // The library logs the outage once; EF's own command-failure lines are bounded by the backoff.
        Assert.Single(Errors(), l => l.Category.StartsWith("Thrivestack", StringComparison.Ordinal));
        Assert.Single(harness.Logs.Lines, l => l.Category.StartsWith("Thrivestack", StringComparison.Ordinal) && l.EventId.Id == 10);
        Assert.True(Errors().Count < 40, $"{Errors().Count} error lines during a 3 s outage");
        Assert.Empty(Workload.OutOfOrderUsers(harness.StandIn));
        output.WriteLine($"{Total} events; database down about 3 s; first delivery {recovery.TotalMilliseconds:N0} ms after restart; duplicates {Workload.Count(harness.StandIn).Duplicates}; error lines {Errors().Count(l => l.Category.StartsWith("Thrivestack", StringComparison.Ordinal))} from the library, {Errors().Count} in all");
    }

    [Fact]
    public async Task Dispatcher_ThriveStackDownWhileAppKeepsSaving_BacklogGrowsOnDiskWithFlatMemoryThenDrains()
    {
        harness.StandIn.Faults.ServerErrorRate = 1.0;
        var host = await harness.StartHostAsync(o =>
        {
            o.MaxAttempts = 1_000;
            o.RetryMaxDelay = TimeSpan.FromMilliseconds(500);
        });

        const int Saves = 20, UsersPerSave = 500, Total = Saves * UsersPerSave;
        long memoryEarly = 0;
        for (var i = 0; i < Saves; i++)
        {
            await DispatchHarness.SaveUsersAsync(host, UsersPerSave, $"s{i}-");
            if (i == 3)
            {
                memoryEarly = ManagedMemory();
            }
        }

        var memoryLate = ManagedMemory();
        Assert.Equal(Total, await Workload.PendingAsync(harness.Database));
        Assert.Equal(0, harness.StandIn.AcceptedEventCount);
        Assert.Contains(harness.StandIn.Requests, r => r.StatusCode is 500 or 503);

        // 8,000 more rows pending must not mean 8,000 more rows in memory: the outbox is the queue.
        Assert.True(memoryLate - memoryEarly < 16 * 1024 * 1024, $"managed memory grew {(memoryLate - memoryEarly) / 1024 / 1024} MB while the backlog grew");

        harness.StandIn.Faults.ServerErrorRate = 0;
        var recovered = Stopwatch.StartNew();
        await harness.StandIn.WaitUntilAsync(s => s.Events.Select(e => e.UserId).Distinct().Count() == Total, TimeSpan.FromSeconds(120));
        await harness.WaitForOutboxAsync(rows => rows.TrueForAll(r => r.State != Outbox.OutboxRowState.Pending));
        output.WriteLine($"{Total} events saved during a ThriveStack outage; managed memory {memoryEarly / 1024 / 1024} MB -> {memoryLate / 1024 / 1024} MB; drained {recovered.Elapsed.TotalSeconds:F1} s after recovery");
    }

    [Fact]
    public async Task Dispatcher_TransactionOpenLongerThanTheLease_DeliversItsEventOnceAndOthersMeanwhile()
    {
        var lease = TimeSpan.FromSeconds(2);
        var host = await harness.StartHostAsync(o =>
        {
            o.LeaseDuration = lease;
            o.RequestTimeout = TimeSpan.FromSeconds(1);
            o.MaxRequestRetries = 0;
        });

        var longUser = new AppUser { Id = Guid.NewGuid(), Email = "long@example.com" };
        await using var scope = host.Services.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        await using (var transaction = await context.Database.BeginTransactionAsync())
        {
            context.Users.Add(longUser);
            await context.SaveChangesAsync();

            // Others keep saving and their events flow while this transaction is open.
            await DispatchHarness.SaveUsersAsync(host, 10, "meanwhile");
            await harness.StandIn.WaitForEventsAsync(10, TimeSpan.FromSeconds(30));

            // Held open for two leases: its row must not look abandoned, nor be claimed before commit.
            await Task.Delay(lease * 2);
            Assert.Empty(harness.StandIn.EventsFor(longUser.Id.ToString()));
            await transaction.CommitAsync();
        }

        await harness.StandIn.WaitUntilAsync(s => s.EventsFor(longUser.Id.ToString()).Count > 0, TimeSpan.FromSeconds(30));
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        Assert.Single(harness.StandIn.EventsFor(longUser.Id.ToString()));
    }

    private List<LogCollector.LogLine> Errors() => harness.Logs.Lines.Where(l => l.Level >= LogLevel.Error).ToList();

    private static long ManagedMemory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

}
