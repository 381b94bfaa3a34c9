using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// Acknowledgements do not pace the sends: a lane sends its next batches, and claims and sends its next page, while the
/// database writes what ThriveStack accepted; the batches accepted meanwhile are acknowledged together. Nothing is sent
/// twice meanwhile, and what was accepted is written before the dispatcher stops.
/// </summary>
public sealed class AcknowledgementPipelineTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_AcknowledgementHeldUp_SendsTheNextPageMeanwhileWithoutSendingAnyRowTwice()
    {
        // 60 users, batches of 5, one lane: pages of 4 batches, 12 requests in all.
        await harness.EnqueueAsync(Enumerable.Range(0, 60).Select(i => ($"u{i:00}", (IReadOnlyDictionary<string, object?>?)null)));
        var gate = new AcknowledgementGate();
        var host = BuildHost(gate);
        await host.StartAsync();

        try
        {
            // The first acknowledgement is held: the lane still sends the rest of its page and the next page, whose users are
            // other users (the accepted rows are still in the outbox, but their users stay in flight until written). It goes
            // no further: at most one page's acknowledgements wait behind the page being sent.
            await gate.FirstHeld.WaitAsync(Deadline);
            await harness.StandIn.WaitUntilAsync(s => s.AcceptedRequestCount >= 8, Deadline);
            Assert.Equal(1, gate.Statements);
        }
        finally
        {
            gate.Release();
        }

        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.Equal(60, harness.StandIn.Events.Count);
        Assert.Equal(60, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
        Assert.Equal(12, harness.StandIn.AcceptedRequestCount);

        // Batches accepted while an acknowledgement was written were acknowledged together: fewer statements than batches.
        Assert.InRange(gate.Statements, 4, 8);
    }

    [Fact]
    public async Task Dispatcher_StopsWhileAnAcknowledgementIsBeingWritten_WritesItBeforeItStops()
    {
        await harness.EnqueueAsync(Enumerable.Range(0, 5).Select(i => ($"u{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var gate = new AcknowledgementGate();
        var host = BuildHost(gate);
        await host.StartAsync();
        await gate.FirstHeld.WaitAsync(Deadline);

        // The held acknowledgement goes on once the host is stopping, and is written, not cancelled, before StopAsync returns.
        // (When the lane ends relative to that write is not observable from here: the lane's last wait is pinned by reading.)
        using var releaseOnStop = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(gate.Release);
        await host.StopAsync();

        Assert.Empty(await harness.RowsAsync());
        Assert.Equal(5, harness.StandIn.Events.Count);
    }

    [Fact]
    public async Task Dispatcher_UsersNewerEventCommittedWhileItsLastIsBeingAcknowledged_IsSentOnceThatIsWritten()
    {
        // No poll for an hour and no nudge: the newer event goes out only because the lane claims again once the page that
        // held its user in flight is written.
        await harness.EnqueueAsync([("ada", new Dictionary<string, object?> { ["edit"] = 1 })]);
        var gate = new AcknowledgementGate { PageSent = () => harness.StandIn.AcceptedRequestCount >= 1 };
        var host = BuildHost(gate);
        await host.StartAsync();
        await gate.FirstHeld.WaitAsync(Deadline);

        // The lane's next claim found nothing (ada is in flight) and its context was disposed (before or after the
        // acknowledgement reached the gate): without claiming again once the page is written, it would now wait for the poll.
        await gate.ClosedAfterPageSent.WaitAsync(Deadline);
        await harness.EnqueueAsync([("ada", new Dictionary<string, object?> { ["edit"] = 2 })]);
        gate.Release();

        await harness.StandIn.WaitForEventsAsync(2, Deadline);
        Assert.Equal([1, 2], harness.StandIn.EventsFor("ada").Select(e => e.Traits!.Value.GetProperty("edit").GetInt32()));
    }

    [Fact]
    public async Task Dispatcher_UsersNewerEventWhileItsOlderIsInAnotherLanesPage_IsSentOnceThatPageIsWritten()
    {
        // Twenty users fill the leader's first page (four batches of five), which wakes a second lane (answers take 50 ms, so
        // the network is the wait); ada, the 21st row, goes to that lane, whose acknowledgement of her is held.
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(50);
        await harness.EnqueueAsync(Enumerable.Range(0, 20).Select(i => ($"u{i:00}", (IReadOnlyDictionary<string, object?>?)null)));
        await harness.EnqueueAsync([("ada", new Dictionary<string, object?> { ["edit"] = 1 })]);
        var ada = (await harness.RowsAsync()).Single(r => r.UserId == "ada").Id;
        var gate = new AcknowledgementGate
        {
            Holds = ids => ids.Contains(ada),
            // The leader's claim after its own page (four requests) is the one to watch, whichever lane took ada.
            PageSent = () => harness.StandIn.AcceptedRequestCount >= 4,
        };
        var host = BuildHost(gate, maxConcurrentRequests: 2);
        await host.StartAsync();
        await gate.FirstHeld.WaitAsync(Deadline);

        // The leader, done with its page, claimed again and found only ada, in flight in the other lane: it now waits for the
        // poll (an hour) unless the end of ada's page wakes it.
        await gate.ClosedAfterPageSent.WaitAsync(Deadline);
        await harness.EnqueueAsync([("ada", new Dictionary<string, object?> { ["edit"] = 2 })]);
        gate.Release();

        await harness.StandIn.WaitUntilAsync(s => s.EventsFor("ada").Count == 2, Deadline);
        Assert.Equal([1, 2], harness.StandIn.EventsFor("ada").Select(e => e.Traits!.Value.GetProperty("edit").GetInt32()));
        Assert.Equal(22, harness.StandIn.Events.Count);
    }

    [Fact]
    public async Task Dispatcher_AcknowledgementFails_SendsItsRowsAgainAndReportsTheOutboxOnce()
    {
        await harness.EnqueueAsync(Enumerable.Range(0, 20).Select(i => ($"u{i:00}", (IReadOnlyDictionary<string, object?>?)null)));
        var gate = new AcknowledgementGate { FailFirst = true };
        var host = BuildHost(gate);
        await host.StartAsync();

        // The page's four batches are accepted; the first acknowledgement then fails as a locked database would, and the
        // three queued behind it are not written either: their rows are still pending, and are sent again (at least once).
        await gate.FirstHeld.WaitAsync(Deadline);
        await harness.StandIn.WaitUntilAsync(s => s.AcceptedRequestCount >= 4, Deadline);
        gate.Release();

        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.All(harness.StandIn.Events.GroupBy(e => e.UserId), g => Assert.Equal(2, g.Count()));
        Assert.Equal(20, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
        Assert.Single(harness.Logs.Lines, l => l.Is(9));
    }

    [Fact]
    public async Task Dispatcher_WritesKeepFailingWhileReadsWork_ReportsOneOutageUntilAWriteGoesThrough()
    {
        // A full disk, or a lock held past busy_timeout: SQLite's claims (reads) go through, acknowledgements (writes) fail.
        await harness.EnqueueAsync(Enumerable.Range(0, 5).Select(i => ($"u{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var gate = new AcknowledgementGate { FailingWrites = 3, Holds = _ => false };
        var host = BuildHost(gate);
        await host.StartAsync();

        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.Equal(4, gate.Statements);
        Assert.All(harness.StandIn.Events.GroupBy(e => e.UserId), g => Assert.Equal(4, g.Count()));

        // One error when the writes started failing and one recovery when one went through; a read in between is no recovery.
        await harness.Logs.WaitForAsync(l => l.Is(10), Deadline);
        Assert.Single(harness.Logs.Lines, l => l.Is(9));
        Assert.Single(harness.Logs.Lines, l => l.Is(10));
    }

    [Fact]
    public async Task Dispatcher_AcknowledgementUnderWayWhenTheOutboxFailedGoesThroughLater_IsNoRecovery()
    {
        // Two lanes (answers take 50 ms, so the network is the wait). One lane's first acknowledgement is held, and from then
        // on the database refuses everything else: new connections and every other statement, as a server that went down
        // would (the other lane's next claim, or a write of a page claimed ahead, fails: the outage begins). The held write,
        // and the rest of its page's on its connection, then go through: they began before the failure and say nothing
        // of the database now. Taken for a recovery, they would log "recovered" and, at the next failure, a second outage.
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(50);
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"u{i:000}", (IReadOnlyDictionary<string, object?>?)null)));
        var gate = new AcknowledgementGate { FailOnHold = true };
        var host = BuildHost(gate, maxConcurrentRequests: 2);
        await host.StartAsync();

        await gate.FirstHeld.WaitAsync(Deadline);
        await harness.Logs.WaitForAsync(l => l.Is(9), Deadline);
        gate.Release();
        await gate.HeldWritten.WaitAsync(Deadline);

        // The lanes try again after their backoff and are refused again: the same outage.
        var refusedAtRelease = gate.Refused;
        await WaitUntilAsync(() => gate.Refused >= refusedAtRelease + 2);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(10));
        gate.StopFailing();

        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        await harness.Logs.WaitForAsync(l => l.Is(10), Deadline);
        Assert.Single(harness.Logs.Lines, l => l.Is(9));
        Assert.Single(harness.Logs.Lines, l => l.Is(10));
        Assert.Equal(200, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
    }

    [Fact]
    public async Task Dispatcher_AcknowledgementFailureSeenMidPage_IsAWriteOutageThatAReadDoesNotEnd()
    {
        // Answers take 200 ms, so the first acknowledgement's failure (at once) is seen when the page's next batch is
        // delivered, in the middle of the cycle. It is a write that failed: the next claim, a read on SQLite, is no
        // recovery, and the next page's acknowledgement failing too is the same outage. One error, one recovery.
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(200);
        await harness.EnqueueAsync(Enumerable.Range(0, 20).Select(i => ($"u{i:00}", (IReadOnlyDictionary<string, object?>?)null)));
        var gate = new AcknowledgementGate { FailingWrites = 2, Holds = _ => false };
        var host = BuildHost(gate);
        await host.StartAsync();

        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        await harness.Logs.WaitForAsync(l => l.Is(10), Deadline);
        Assert.True(gate.Statements >= 3, $"{gate.Statements} acknowledgements");
        Assert.Single(harness.Logs.Lines, l => l.Is(9));
        Assert.Single(harness.Logs.Lines, l => l.Is(10));
        Assert.Equal(20, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition was not met before the deadline");
            await Task.Delay(10);
        }
    }

    private IHost BuildHost(AcknowledgementGate gate, int maxConcurrentRequests = 1) =>
        harness.BuildHost(
            o =>
            {
                o.MaxEventsPerBatch = 5;
                o.MaxConcurrentRequests = maxConcurrentRequests;
                o.PollInterval = TimeSpan.FromHours(1);
            },
            services: s => s.ConfigureDbContext<TestDbContext>(o => o.AddInterceptors(gate)));

    /// <summary>
    /// Holds the first acknowledgement (the outbox DELETE) until released, or fails it; counts them all; tells when a
    /// connection of the dispatcher closed after the first page was sent and before the release (a page's context
    /// disposed: a claim that took nothing).
    /// </summary>
    private sealed class AcknowledgementGate : DbCommandInterceptor, IDbConnectionInterceptor
    {
        private readonly TaskCompletionSource held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource closedAfterPageSent = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource heldWritten = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly System.Runtime.CompilerServices.ConditionalWeakTable<DbConnection, object> ranCommand = [];
        private DbCommand? heldCommand;
        private DbConnection? heldConnection;
        private int statements;
        private int refused;
        private volatile bool failing;

        /// <summary>The first acknowledgement, once released, fails as a locked database would.</summary>
        public bool FailFirst { get; init; }

        /// <summary>This many acknowledgements fail at once, as a locked database's would (none held).</summary>
        public int FailingWrites { get; init; }

        /// <summary>Which acknowledgement is held (by the row ids it names): the first of all by default.</summary>
        public Func<long[], bool> Holds { get; init; } = _ => true;

        /// <summary>Whether the first page was sent (ThriveStack accepted it): connections closed before that are start-up's.</summary>
        public Func<bool> PageSent { get; init; } = () => false;

        public Task FirstHeld => held.Task;

        /// <summary>The held acknowledgement, released, went through.</summary>
        public Task HeldWritten => heldWritten.Task;

        /// <summary>
        /// From the first hold on, until <see cref="StopFailing"/>, the database refuses every new connection and every
        /// statement but those on the held acknowledgement's connection, as a server that went down would.
        /// </summary>
        public bool FailOnHold { get; init; }

        /// <summary>Connections and statements refused so far.</summary>
        public int Refused => Volatile.Read(ref refused);

        public void StopFailing() => failing = false;

        public InterceptionResult ConnectionOpening(DbConnection connection, ConnectionEventData eventData, InterceptionResult result)
        {
            RefuseIfFailing(connection);
            return result;
        }

        public ValueTask<InterceptionResult> ConnectionOpeningAsync(
            DbConnection connection, ConnectionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
        {
            RefuseIfFailing(connection);
            return ValueTask.FromResult(result);
        }

        public override InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result)
        {
            RefuseIfFailing(command.Connection);
            return result;
        }

        public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
        {
            RefuseIfFailing(command.Connection);
            return result;
        }

        public override InterceptionResult<object> ScalarExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<object> result)
        {
            RefuseIfFailing(command.Connection);
            return result;
        }

        public override ValueTask<InterceptionResult<object>> ScalarExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<object> result, CancellationToken cancellationToken = default)
        {
            RefuseIfFailing(command.Connection);
            return ValueTask.FromResult(result);
        }

        private void RefuseIfFailing(DbConnection? connection)
        {
            if (failing && !ReferenceEquals(connection, Volatile.Read(ref heldConnection)))
            {
                Interlocked.Increment(ref refused);
                throw new Microsoft.Data.Sqlite.SqliteException("unable to open database file", 14);
            }
        }

        public override ValueTask<int> NonQueryExecutedAsync(
            DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
        {
            if (ReferenceEquals(command, Volatile.Read(ref heldCommand)))
            {
                heldWritten.TrySetResult();
            }

            return ValueTask.FromResult(result);
        }

        public Task ClosedAfterPageSent => closedAfterPageSent.Task;

        public int Statements => Volatile.Read(ref statements);

        public void Release() => released.TrySetResult();

        public void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => WatchClose(connection);

        public Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            WatchClose(connection);
            return Task.CompletedTask;
        }

        // A connection that ran no acknowledgement and closes after the page was sent is a lane's next page's, whose context
        // is disposed at once when its claim (a read outside EF's commands) took nothing.
        private void WatchClose(DbConnection connection) =>
            connection.StateChange += (_, change) =>
            {
                if (change.CurrentState == System.Data.ConnectionState.Closed && !released.Task.IsCompleted && PageSent()
                    && !ranCommand.TryGetValue(connection, out var _))
                {
                    closedAfterPageSent.TrySetResult();
                }
            };

        private static long[] IdsOf(DbCommand command) =>
            command.Parameters.Count > 0 && command.Parameters[0].Value is string json && json.StartsWith('[')
                ? System.Text.Json.JsonSerializer.Deserialize<long[]>(json)!
                : [];

        public override async ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            RefuseIfFailing(command.Connection);
            await HoldAsync(command);
            return result;
        }

        public override async ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            RefuseIfFailing(command.Connection);
            await HoldAsync(command);
            return result;
        }

        private async Task HoldAsync(DbCommand command)
        {
            if (!command.CommandText.TrimStart().StartsWith("DELETE FROM", StringComparison.OrdinalIgnoreCase)
                || !command.CommandText.Contains("thrivestack_outbox", StringComparison.Ordinal))
            {
                return;
            }

            var number = Interlocked.Increment(ref statements);
            if (number <= FailingWrites)
            {
                throw new Microsoft.Data.Sqlite.SqliteException("database is locked", 5);
            }

            ranCommand.AddOrUpdate(command.Connection!, this);
            if (!held.Task.IsCompleted && Holds(IdsOf(command)))
            {
                Volatile.Write(ref heldCommand, command);
                if (FailOnHold)
                {
                    Volatile.Write(ref heldConnection, command.Connection);
                    failing = true;
                }

                held.TrySetResult();
                await released.Task.WaitAsync(Deadline);
                if (FailFirst)
                {
                    throw new Microsoft.Data.Sqlite.SqliteException("database is locked", 5);
                }
            }
        }
    }
}
