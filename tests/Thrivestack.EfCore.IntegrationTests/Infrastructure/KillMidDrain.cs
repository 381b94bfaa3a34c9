using System.Diagnostics;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>
/// A dispatcher process SIGKILLed mid-drain with several batches in flight, then a dispatcher of the test's host drains
/// the rest: the crash tests of both providers.
/// </summary>
internal static class KillMidDrain
{
    /// <summary>
    /// The killed process's lease; its requests time out after half of it (5 s), ample for answers after 300 ms on a
    /// loaded machine, so that it repeats nothing before it is killed. The rows it held wait this long after the kill.
    /// </summary>
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(10);

    /// <summary>What arrived before the kill and in all, and what the outbox had recorded as delivered at the kill.</summary>
    /// <param name="Unacknowledged">
    /// Events ThriveStack accepted before the kill whose rows the killed process had not yet marked delivered: the only
    /// ones a crash may send again.
    /// </param>
    /// <param name="AcknowledgedSentAgain">Events marked delivered before the kill that arrived again after it (must be 0).</param>
    public sealed record Outcome(
        int Total, int ArrivedBeforeKill, int PeakBeforeKill, int Distinct, int Duplicates, int Unacknowledged, int AcknowledgedSentAgain,
        TimeSpan DrainedAfterKill, List<string> OutOfOrderUsers)
    {
        public override string ToString() =>
            $"{Total} events, SIGKILL after {ArrivedBeforeKill} arrived ({Unacknowledged} of them not yet acknowledged); drained {DrainedAfterKill.TotalSeconds:F1} s after the kill; duplicates {Duplicates}, peak in flight before the kill {PeakBeforeKill}";
    }

    /// <summary>
    /// Enqueues <paramref name="users"/> x <paramref name="eventsPerUser"/> events, answered after 300 ms (the network, not
    /// the database, is then the wait even on a loaded machine: lanes open only then), kills the process once
    /// <paramref name="killAfter"/> events arrived with more than one request in flight, reads what the outbox recorded as
    /// delivered once the requests the process left behind have ended, and drains the rest here (with a request timeout
    /// long enough that this drain itself repeats nothing on a loaded machine).
    /// <paramref name="afterKill"/> runs between the kill and the start of the test's dispatcher.
    /// </summary>
    public static async Task<Outcome> RunAsync(DispatchHarness harness, string connectionString, int users, int eventsPerUser, int batch, int killAfter, Func<Task>? afterKill = null)
    {
        var total = users * eventsPerUser;
        await Workload.EnqueueAsync(harness.Database, users, eventsPerUser);
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(300);
        int peakBeforeKill;
        using (var doomed = await DispatcherProcess.StartAsync(connectionString, harness.StandIn.Endpoint, harness.StandIn.ApiToken, Lease, batch))
        {
            await harness.StandIn.WaitUntilAsync(s => s.AcceptedEventCount >= killAfter && s.PeakConcurrentRequests > 1, TimeSpan.FromSeconds(120));
            await doomed.KillAsync();
            peakBeforeKill = harness.StandIn.PeakConcurrentRequests;
        }

        // Every request of the dead process arrived before this instant, every one of the test's dispatcher after it. The
        // stand-in may record a request it was still answering after this (accepted or not): events are sorted into
        // before and after the kill by their request's arrival once the drain is over, not by what was recorded here.
        var killed = DateTimeOffset.UtcNow;
        var killedAt = Stopwatch.StartNew();
        await harness.StandIn.WaitUntilAsync(s => s.InFlightRequestCount == 0, TimeSpan.FromSeconds(30));
        var acknowledged = await AcknowledgedAsync(harness.Database);
        if (afterKill is not null)
        {
            await afterKill();
        }

        await harness.StartHostAsync(o =>
        {
            o.LeaseDuration = TimeSpan.FromSeconds(30);
            o.RequestTimeout = TimeSpan.FromSeconds(10);
            o.MaxRequestRetries = 0;
            o.MaxEventsPerBatch = batch;
        });
        await harness.StandIn.WaitUntilAsync(_ => Workload.Count(harness.StandIn).Distinct == total, TimeSpan.FromSeconds(180));
        await Workload.WaitUntilNothingPendingAsync(harness.Database, TimeSpan.FromSeconds(60));

        var (distinct, duplicates) = Workload.Count(harness.StandIn);
        var arrival = harness.StandIn.Requests.ToDictionary(r => r.Index, r => r.ReceivedAt);
        var events = harness.StandIn.Events;
        var arrivedBeforeKill = events.Where(e => arrival[e.RequestIndex] < killed).Select(Key).ToHashSet();
        var sentAfterKill = events.Where(e => arrival[e.RequestIndex] >= killed).Select(Key).ToList();
        return new Outcome(
            total, arrivedBeforeKill.Count, peakBeforeKill, distinct, duplicates,
            Unacknowledged: arrivedBeforeKill.Count(e => !acknowledged.Contains(e)),
            AcknowledgedSentAgain: sentAfterKill.Count(acknowledged.Contains),
            killedAt.Elapsed, Workload.OutOfOrderUsers(harness.StandIn));
    }

    /// <summary>
    /// Nothing the killed process recorded as delivered is sent again, and only what it cut off arrives twice (the
    /// request timeouts of both dispatchers are long enough that no request of theirs times out).
    /// What it cut off is bounded: each of its lanes (<see cref="ThrivestackOptions.MaxConcurrentRequests"/>) had at most
    /// its last two pages unacknowledged (README "Acknowledgements do not pace the sends"), and a page is at most four
    /// batches. A test that kills after more events arrived than that bound also fails when nothing was acknowledged.
    /// </summary>
    public static void AssertRepeatsOnlyWhatWasCutOff(Outcome outcome, int batch)
    {
        Assert.Equal(0, outcome.AcknowledgedSentAgain);
        Assert.InRange(outcome.Duplicates, 0, outcome.Unacknowledged);
        Assert.InRange(outcome.Unacknowledged, 0, MostUnacknowledged(batch));
    }

    /// <summary>The most events a killed process can have had accepted and not yet acknowledged.</summary>
    public static int MostUnacknowledged(int batch) => new ThrivestackOptions().MaxConcurrentRequests * 2 * 4 * batch;

    private static (string UserId, int Seq) Key(Testing.ReceivedIdentifyEvent e) => (e.UserId, Workload.Seq(e));

    /// <summary>The events whose rows are marked delivered (the crash tests' dispatcher processes keep delivered rows).</summary>
    private static async Task<HashSet<(string UserId, int Seq)>> AcknowledgedAsync(TestDatabase database)
    {
        await using var context = database.CreateContext();
        var rows = await context.Set<OutboxMessage>().AsNoTracking().Where(r => r.State == OutboxRowState.Delivered)
            .Select(r => new { r.UserId, r.Payload }).ToListAsync();
        return rows.Select(r => (r.UserId, JsonDocument.Parse(r.Payload).RootElement.GetProperty("traits").GetProperty("seq").GetInt32())).ToHashSet();
    }
}
