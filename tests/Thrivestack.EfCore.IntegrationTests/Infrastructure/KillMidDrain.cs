using System.Diagnostics;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>
/// A dispatcher process SIGKILLed mid-drain with several batches in flight, then a dispatcher of the test's host drains
/// the rest: the crash tests of both providers.
/// </summary>
internal static class KillMidDrain
{
    /// <summary>What arrived before the kill and in all.</summary>
    public sealed record Outcome(int Total, int ArrivedBeforeKill, int PeakBeforeKill, int Distinct, int Duplicates, TimeSpan DrainedAfterKill, List<string> OutOfOrderUsers)
    {
        public override string ToString() =>
            $"{Total} events, SIGKILL after {ArrivedBeforeKill} arrived; drained {DrainedAfterKill.TotalSeconds:F1} s after the kill; duplicates {Duplicates}, peak in flight before the kill {PeakBeforeKill}";
    }

    /// <summary>
    /// Enqueues <paramref name="users"/> x <paramref name="eventsPerUser"/> events, answered after 300 ms (the network, not
    /// the database, is then the wait even on a loaded machine: lanes open only then), kills the process once
    /// <paramref name="killAfter"/> events arrived with more than one request in flight, and drains the rest here.
    /// <paramref name="afterKill"/> runs between the kill and the start of the test's dispatcher.
    /// </summary>
    public static async Task<Outcome> RunAsync(DispatchHarness harness, string connectionString, int users, int eventsPerUser, int batch, TimeSpan lease, int killAfter, Func<Task>? afterKill = null)
    {
        var total = users * eventsPerUser;
        await Workload.EnqueueAsync(harness.Database, users, eventsPerUser);
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(300);
        int peakBeforeKill;
        using (var doomed = await DispatcherProcess.StartAsync(connectionString, harness.StandIn.Endpoint, harness.StandIn.ApiToken, lease, batch))
        {
            await harness.StandIn.WaitUntilAsync(s => s.AcceptedEventCount >= killAfter && s.PeakConcurrentRequests > 1, TimeSpan.FromSeconds(120));
            await doomed.KillAsync();
            peakBeforeKill = harness.StandIn.PeakConcurrentRequests;
        }

        var killedAt = Stopwatch.StartNew();
        var arrivedBeforeKill = harness.StandIn.AcceptedEventCount;
        if (afterKill is not null)
        {
            await afterKill();
        }

        await harness.StartHostAsync(o =>
        {
            o.LeaseDuration = lease;
            o.RequestTimeout = TimeSpan.FromSeconds(1.5);
            o.MaxRequestRetries = 0;
            o.MaxEventsPerBatch = batch;
        });
        await harness.StandIn.WaitUntilAsync(_ => Workload.Count(harness.StandIn).Distinct == total, TimeSpan.FromSeconds(180));
        await Workload.WaitUntilNothingPendingAsync(harness.Database, TimeSpan.FromSeconds(60));

        var (distinct, duplicates) = Workload.Count(harness.StandIn);
        return new Outcome(total, arrivedBeforeKill, peakBeforeKill, distinct, duplicates, killedAt.Elapsed, Workload.OutOfOrderUsers(harness.StandIn));
    }
}
