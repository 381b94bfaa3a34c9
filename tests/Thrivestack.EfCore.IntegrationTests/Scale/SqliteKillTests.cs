using System.Diagnostics;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Thrivestack.EfCore.IntegrationTests.Scale;

/// <summary>
/// A dispatcher process on a SQLite file, SIGKILLed with several batches in flight: a dispatcher of another process takes
/// the outbox-wide lease over once the dead holder missed half a lease of renewals, loses nothing, keeps each user's order,
/// and re-sends at most what the killed one had in flight or accepted and not yet acknowledged (README "SQLite: one
/// dispatcher per outbox": a lane's last two pages at most).
/// </summary>
public sealed class SqliteKillTests(ITestOutputHelper output) : IAsyncLifetime
{
    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync(new SqliteTestDatabase());

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task DispatcherProcess_KilledMidDrainWithSeveralBatchesInFlight_LosesNothingAndRepeatsAtMostItsLanesLastTwoPages()
    {
        const int Users = 1_000, EventsPerUser = 5, Total = Users * EventsPerUser, Batch = 20;
        await Workload.EnqueueAsync(harness.Database, Users, EventsPerUser);
        // Answers slow enough that the network, not the database, is the wait even on a loaded machine: lanes open only then.
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(300);
        var connection = ((SqliteTestDatabase)harness.Database).ConnectionString;
        var lease = TimeSpan.FromSeconds(4);
        int peakBeforeKill;
        using (var doomed = await DispatcherProcess.StartAsync(connection, harness.StandIn.Endpoint, harness.StandIn.ApiToken, lease, Batch))
        {
            // Killed halfway, when a process that acknowledged nothing would re-send more than the bound below.
            await harness.StandIn.WaitUntilAsync(s => s.AcceptedEventCount >= Total / 2 && s.PeakConcurrentRequests > 1, TimeSpan.FromSeconds(120));
            await doomed.KillAsync();
            peakBeforeKill = harness.StandIn.PeakConcurrentRequests;
        }

        var killedAt = Stopwatch.StartNew();
        var arrivedBeforeKill = harness.StandIn.AcceptedEventCount;
        Assert.True(arrivedBeforeKill < Total, "the killed process delivered everything before it was killed");
        await harness.StartHostAsync(o =>
        {
            o.LeaseDuration = lease;
            o.RequestTimeout = TimeSpan.FromSeconds(1.5);
            o.MaxRequestRetries = 0;
            o.MaxEventsPerBatch = Batch;
        });
        await harness.StandIn.WaitUntilAsync(_ => Workload.Count(harness.StandIn).Distinct == Total, TimeSpan.FromSeconds(180));
        // The killed process kept what it delivered (DeliveredRetention); the rest is delivered and deleted by this host.
        await harness.WaitForOutboxAsync(rows => rows.All(r => r.State == OutboxRowState.Delivered), TimeSpan.FromSeconds(60));

        // The killed holder's lease was taken over (log 39), not given back: it never stopped.
        Assert.Contains(harness.Logs.Lines, l => l.Is(39));
        var (distinct, duplicates) = Workload.Count(harness.StandIn);
        Assert.Equal(Total, distinct);
        // Each of the killed process's lanes (MaxConcurrentRequests, 8 by default) had at most its last two pages unacknowledged;
        // a page is at most four batches.
        Assert.InRange(duplicates, 0, new ThrivestackOptions().MaxConcurrentRequests * 2 * 4 * Batch);
        Assert.True(peakBeforeKill > 1, $"the killed process had at most {peakBeforeKill} request in flight");
        Assert.Empty(Workload.OutOfOrderUsers(harness.StandIn));
        output.WriteLine($"{Total} events, SIGKILL after {arrivedBeforeKill} arrived; drained {killedAt.Elapsed.TotalSeconds:F1} s after the kill (lease {lease.TotalSeconds} s); duplicates {duplicates}, peak in flight before the kill {peakBeforeKill}");
    }
}
