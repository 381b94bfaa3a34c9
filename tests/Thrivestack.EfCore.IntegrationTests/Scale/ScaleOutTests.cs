using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Thrivestack.EfCore.IntegrationTests.Scale;

/// <summary>Several dispatchers, some in their own OS processes, share one PostgreSQL outbox.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ScaleOutTests(PostgresServer server, ITestOutputHelper output) : IAsyncLifetime
{
    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync(await PostgresTestDatabase.CreateAsync(server));

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task ThreeDispatchers_TwoOfThemSeparateProcesses_DeliverEveryEventOnceAndInOrder()
    {
        const int Users = 5_000, EventsPerUser = 4, Total = Users * EventsPerUser;
        await Workload.EnqueueAsync(harness.Database, Users, EventsPerUser);
        var connection = ((PostgresTestDatabase)harness.Database).ConnectionString;
        // Small batches answered after 50 ms: one instance alone (8 requests in flight) needs seconds, so all three take part.
        const int Batch = 20;
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(50);
        var clock = Stopwatch.StartNew();
        using var first = await DispatcherProcess.StartAsync(connection, harness.StandIn.Endpoint, harness.StandIn.ApiToken, TimeSpan.FromSeconds(30), Batch);
        using var second = await DispatcherProcess.StartAsync(connection, harness.StandIn.Endpoint, harness.StandIn.ApiToken, TimeSpan.FromSeconds(30), Batch);
        await harness.StartHostAsync(o =>
        {
            o.DeliveredRetention = TimeSpan.FromHours(1);
            o.MaxEventsPerBatch = Batch;
        });

        await harness.StandIn.WaitForEventsAsync(Total, TimeSpan.FromSeconds(180));
        await WaitUntilAsync(async () => await Workload.PendingAsync(harness.Database) == 0, TimeSpan.FromSeconds(60));
        clock.Stop();

        var (distinct, duplicates) = Workload.Count(harness.StandIn);
        Assert.Equal(Total, distinct);
        Assert.Equal(0, duplicates);
        Assert.Empty(Workload.OutOfOrderUsers(harness.StandIn));
        await using var context = harness.Database.CreateContext();
        var owners = await context.Set<OutboxMessage>().Where(r => r.State == OutboxRowState.Delivered)
            .GroupBy(r => r.LeaseOwner).Select(g => new { Owner = g.Key, Count = g.Count() }).ToListAsync();
        Assert.True(owners.Count >= 2, $"expected several instances to deliver, saw {owners.Count}");
        output.WriteLine($"{Total} events, 3 dispatchers (2 processes): {clock.Elapsed.TotalSeconds:F1} s, {Total / clock.Elapsed.TotalSeconds:N0} events/s, duplicates {duplicates}, per instance {string.Join(", ", owners.Select(o => o.Count))}");
    }

    [Fact]
    public async Task DispatcherProcess_KilledMidDrainWithSeveralBatchesInFlight_LosesNothingAndRepeatsAtMostThoseBatches()
    {
        const int Users = 1_000, EventsPerUser = 5, Total = Users * EventsPerUser, Batch = 100;
        await Workload.EnqueueAsync(harness.Database, Users, EventsPerUser);
        // Answers slow enough that the network, not the claim, is the wait even on a loaded machine: lanes open only then.
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(300);
        var connection = ((PostgresTestDatabase)harness.Database).ConnectionString;
        var lease = TimeSpan.FromSeconds(3);
        int peakBeforeKill;
        using (var doomed = await DispatcherProcess.StartAsync(connection, harness.StandIn.Endpoint, harness.StandIn.ApiToken, lease, Batch))
        {
            // Killed once several batches are in flight (lanes open when the round trip outweighs the claim and the
            // acknowledgement, which a loaded machine can delay) and a fifth of the events arrived.
            await harness.StandIn.WaitUntilAsync(s => s.AcceptedEventCount >= 1_000 && s.PeakConcurrentRequests > 1, TimeSpan.FromSeconds(120));
            await doomed.KillAsync();
            peakBeforeKill = harness.StandIn.PeakConcurrentRequests;
        }

        var killedAt = Stopwatch.StartNew();
        var arrivedBeforeKill = harness.StandIn.AcceptedEventCount;
        await harness.StartHostAsync(o =>
        {
            o.LeaseDuration = lease;
            o.RequestTimeout = TimeSpan.FromSeconds(1.5);
            o.MaxRequestRetries = 0;
        });
        await harness.StandIn.WaitUntilAsync(_ => Workload.Count(harness.StandIn).Distinct == Total, TimeSpan.FromSeconds(180));
        await WaitUntilAsync(async () => await Workload.PendingAsync(harness.Database) == 0, TimeSpan.FromSeconds(60));

        var (distinct, duplicates) = Workload.Count(harness.StandIn);
        Assert.Equal(Total, distinct);
        // The killed process had up to MaxConcurrentRequests (8 by default) batches in flight: at most those arrive twice.
        Assert.InRange(duplicates, 0, Batch * new ThrivestackOptions().MaxConcurrentRequests);
        Assert.True(peakBeforeKill > 1, $"the killed process had at most {peakBeforeKill} request in flight");
        Assert.Empty(Workload.OutOfOrderUsers(harness.StandIn));
        output.WriteLine($"{Total} events, SIGKILL after {arrivedBeforeKill} arrived; drained {killedAt.Elapsed.TotalSeconds:F1} s after the kill (lease {lease.TotalSeconds} s); duplicates {duplicates}, peak in flight before the kill {peakBeforeKill}");
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(deadline.Elapsed < timeout, "the condition was not met in time");
            await Task.Delay(100);
        }
    }
}
