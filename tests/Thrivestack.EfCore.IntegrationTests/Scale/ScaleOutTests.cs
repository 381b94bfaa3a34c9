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
        await Workload.WaitUntilNothingPendingAsync(harness.Database, TimeSpan.FromSeconds(60));
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
    public async Task DispatcherProcess_KilledMidDrainWithSeveralBatchesInFlight_LosesNothingAndRepeatsOnlyWhatItHadNotAcknowledged()
    {
        const int Users = 1_000, EventsPerUser = 5, Batch = 20;
        // Killed halfway, when a process that acknowledged nothing would re-send more than the bound of what it cut off.
        var outcome = await KillMidDrain.RunAsync(
            harness, ((PostgresTestDatabase)harness.Database).ConnectionString, Users, EventsPerUser, Batch, killAfter: Users * EventsPerUser / 2);

        Assert.True(outcome.ArrivedBeforeKill < outcome.Total, "the killed process delivered everything before it was killed");
        Assert.Equal(outcome.Total, outcome.Distinct);
        KillMidDrain.AssertRepeatsOnlyWhatWasCutOff(outcome, Batch);
        Assert.True(outcome.PeakBeforeKill > 1, $"the killed process had at most {outcome.PeakBeforeKill} request in flight");
        Assert.Empty(outcome.OutOfOrderUsers);
        output.WriteLine(outcome.ToString());
    }
}
