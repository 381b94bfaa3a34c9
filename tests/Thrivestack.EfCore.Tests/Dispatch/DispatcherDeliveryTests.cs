using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

public sealed class DispatcherDeliveryTests : IAsyncLifetime
{
    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_CommittedUser_ArrivesExactlyAsWrittenAndRowIsDeleted()
    {
        var host = await harness.StartHostAsync();
        await DispatchHarness.SaveUsersAsync(host, 1);
        await harness.StandIn.WaitForEventsAsync(1, TimeSpan.FromSeconds(30));
        var received = Assert.Single(harness.StandIn.Events);
        Assert.Equal("user0@example.com", received.Traits!.Value.GetProperty("email").GetString());
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
    }

    [Fact]
    public async Task Dispatcher_SendingDisabledWithoutToken_StartsSendsNothingAndKeepsTheRows()
    {
        var host = await harness.StartHostAsync(o =>
        {
            o.ApiToken = null;
            o.SendingEnabled = false;
        });
        await DispatchHarness.SaveUsersAsync(host, 2);

        // The dispatcher has ended its work for this process: nothing can be sent later either.
        await DispatchHarness.Dispatcher(host).ExecuteTask!.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(harness.StandIn.Requests);
        var rows = await harness.RowsAsync();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(OutboxRowState.Pending, r.State));
    }

    [Fact]
    public async Task Dispatcher_CommitInProcess_IsNudgedWithoutWaitingForThePoll()
    {
        // The fake clock never moves: once the dispatcher waits out its hour-long poll, only the nudge can wake it.
        var clock = new WatchedClock();
        var host = await harness.StartHostAsync(o => o.PollInterval = TimeSpan.FromHours(1), clock);
        await clock.WaitForWaitsAsync(1, due => due == TimeSpan.FromHours(1), TimeSpan.FromSeconds(30));
        await DispatchHarness.SaveUsersAsync(host, 3);
        await harness.StandIn.WaitForEventsAsync(3, TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Dispatcher_ManyEvents_RequestsStayWithinCountAndByteLimits()
    {
        await harness.EnqueueAsync(Enumerable.Range(0, 250).Select(i =>
            ($"u{i}", (IReadOnlyDictionary<string, object?>?)new Dictionary<string, object?> { ["bio"] = new string('x', 100 + (i % 7 * 50)) })));
        await harness.StartHostAsync(o =>
        {
            o.MaxEventsPerBatch = 40;
            o.MaxBatchBytes = 4_000;
        });
        await harness.StandIn.WaitForEventsAsync(250, TimeSpan.FromSeconds(30));
        Assert.All(harness.StandIn.Requests, r =>
        {
            Assert.Equal(200, r.StatusCode);
            Assert.InRange(r.EventCount, 1, 40);
            Assert.InRange(r.BodyBytes, 1, 4_000);
        });
        Assert.Equal(250, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
    }

    [Fact]
    public async Task Dispatcher_EventLargerThanTheLimit_IsDeadLetteredAndBlocksNothing()
    {
        await harness.EnqueueAsync([
            ("before", null),
            ("huge", new Dictionary<string, object?> { ["bio"] = new string('x', 5_000) }),
            ("after", null),
        ]);
        await harness.StartHostAsync(o => o.MaxBatchBytes = 2_000);
        await harness.StandIn.WaitForEventsAsync(2, TimeSpan.FromSeconds(30));
        await harness.WaitForOutboxAsync(rows => rows.Count == 1 && rows[0].State == OutboxRowState.DeadLettered);
        var dead = Assert.Single(await harness.RowsAsync());
        Assert.Equal("huge", dead.UserId);
        Assert.Contains("MaxBatchBytes", dead.LastError);
        Assert.DoesNotContain(harness.StandIn.Events, e => e.UserId == "huge");
    }

    [Fact]
    public async Task Dispatcher_BadRequest_SplitsBatchAndDeadLettersOnlyTheBadEvent()
    {
        harness.StandIn.Faults.RejectedUserIds.Add("u3");
        await harness.EnqueueAsync(Enumerable.Range(0, 8).Select(i => ($"u{i}", (IReadOnlyDictionary<string, object?>?)null)));
        await harness.StartHostAsync();
        await harness.StandIn.WaitForEventsAsync(7, TimeSpan.FromSeconds(30));
        await harness.WaitForOutboxAsync(rows => rows.Count == 1 && rows[0].State == OutboxRowState.DeadLettered);
        var dead = Assert.Single(await harness.RowsAsync());
        Assert.Equal("u3", dead.UserId);
        Assert.Contains("HTTP 400", dead.LastError);
        Assert.Contains("u3", dead.LastError);
        Assert.Equal(7, harness.StandIn.Events.Count);
    }

    [Fact]
    public async Task Dispatcher_PayloadTooLarge_SplitsUntilAccepted()
    {
        harness.StandIn.Faults.FailStatusCode = 413;
        harness.StandIn.Faults.FailNextRequests = 1;
        await harness.EnqueueAsync(Enumerable.Range(0, 4).Select(i => ($"u{i}", (IReadOnlyDictionary<string, object?>?)null)));
        await harness.StartHostAsync();
        await harness.StandIn.WaitForEventsAsync(4, TimeSpan.FromSeconds(30));
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        Assert.Equal(413, harness.StandIn.Requests[0].StatusCode);
        Assert.True(harness.StandIn.Requests.Count >= 3);
    }

    [Fact]
    public async Task Dispatcher_RequeuedDeadLetters_AreDeliveredAndPurgeRemovesTheRest()
    {
        harness.StandIn.Faults.RejectedUserIds.Add("bad-1");
        harness.StandIn.Faults.RejectedUserIds.Add("bad-2");
        await harness.EnqueueAsync([("bad-1", null), ("bad-2", null)]);
        var host = await harness.StartHostAsync();
        await harness.WaitForOutboxAsync(rows => rows.Count == 2 && rows.All(r => r.State == OutboxRowState.DeadLettered));

        await using var scope = host.Services.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        var letters = await context.GetThrivestackDeadLettersAsync();
        Assert.Equal(["bad-1", "bad-2"], letters.Select(l => l.UserId));
        Assert.All(letters, l => Assert.Contains("HTTP 400", l.Reason));

        harness.StandIn.Faults.RejectedUserIds.Remove("bad-1");
        Assert.Equal(1, await context.RequeueThrivestackDeadLettersAsync([letters[0].Id]));
        await harness.StandIn.WaitForEventsAsync(1, TimeSpan.FromSeconds(30));
        Assert.Equal("bad-1", Assert.Single(harness.StandIn.Events).UserId);

        Assert.Equal(1, await context.PurgeAllThrivestackDeadLettersAsync());
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
    }

    [Fact]
    public async Task RequeueThrivestackDeadLetters_UserHasANewerPendingEvent_TheNewerStillArrivesLast()
    {
        await harness.EnqueueAsync([("ada", new Dictionary<string, object?> { ["v"] = 1 })]);
        await using (var context = harness.Database.CreateContext())
        {
            await context.Set<OutboxMessage>().ExecuteUpdateAsync(s => s.SetProperty(m => m.State, OutboxRowState.DeadLettered));
        }

        await harness.EnqueueAsync([("ada", new Dictionary<string, object?> { ["v"] = 2 })]);
        await using (var context = harness.Database.CreateContext())
        {
            var letter = Assert.Single(await context.GetThrivestackDeadLettersAsync());
            Assert.Equal(1, await context.RequeueThrivestackDeadLettersAsync([letter.Id]));
        }

        await harness.StartHostAsync();
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);

        // The requeued event keeps its place in the user's order: the newer traits are the last ThriveStack receives.
        Assert.Equal([1, 2], harness.StandIn.EventsFor("ada").Select(e => e.Traits!.Value.GetProperty("v").GetInt32()));
    }

    [Fact]
    public async Task Dispatcher_EventIdResponseWithWarnings_DeliversAndLogsRowIds()
    {
        harness.StandIn.Faults.EventIdResponse = true;
        harness.StandIn.Faults.Warnings.Add("unknown trait ignored");
        await harness.EnqueueAsync([("w1", new Dictionary<string, object?> { ["odd"] = "x" })]);
        await harness.StartHostAsync();
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);

        // The warnings are logged just after the rows are acknowledged.
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(4)), TimeSpan.FromSeconds(30));
        var warning = Assert.Single(harness.Logs.Lines, l => l.Is(4));
        Assert.Contains("unknown trait ignored", warning.Message);
        Assert.Matches("rows [0-9]+", warning.Message);
    }

    [Fact]
    public async Task Dispatcher_SameUserSavedManyTimes_NeverDeliversAnOlderVersionAfterANewer()
    {
        var host = await harness.StartHostAsync(o => o.MaxRequestRetries = 0);
        var id = Guid.NewGuid();
        await using (var scope = host.Services.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
            var user = new AppUser { Id = id, Email = "v@example.com", Age = 0 };
            context.Users.Add(user);
            await context.SaveChangesAsync();
            for (var version = 1; version <= 30; version++)
            {
                harness.StandIn.Faults.FailNextRequests = version % 5 == 0 ? 1 : 0;
                user.Age = version;
                await context.SaveChangesAsync();
            }
        }

        await harness.StandIn.WaitUntilAsync(s => s.EventsFor(id.ToString()).Any(e => e.Traits!.Value.GetProperty("age").GetInt32() == 30), TimeSpan.FromSeconds(30));
        var versions = harness.StandIn.EventsFor(id.ToString()).Select(e => e.Traits!.Value.GetProperty("age").GetInt32()).ToList();
        Assert.Equal(versions.OrderBy(v => v), versions);
        Assert.Contains(harness.StandIn.Requests, r => r.StatusCode == 503);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
    }

    [Fact]
    public async Task Dispatcher_ThousandEventsUnderThirtyPercentFailures_AllArrive()
    {
        harness.StandIn.Faults.ServerErrorRate = 0.15;
        harness.StandIn.Faults.TooManyRequestsRate = 0.15;
        await harness.EnqueueAsync(Enumerable.Range(0, 1000).Select(i => ($"load-{i}", (IReadOnlyDictionary<string, object?>?)null)));

        // Every backoff and poll runs on the fake clock, which moves on by RetryMaxDelay whenever the dispatcher waits.
        var clock = new WatchedClock();
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(TimeSpan.FromMilliseconds(200), stopClock.Token);
        await harness.StartHostAsync(
            o =>
            {
                // Batches of 10: 100+ requests, so both kinds of injected failure occur (0.85^100 chance of no 429).
                o.MaxEventsPerBatch = 10;
                o.MaxAttempts = 50;
                o.PollInterval = TimeSpan.FromMilliseconds(200);
                o.RetryMaxDelay = TimeSpan.FromMilliseconds(200);

                // Only backoffs and polls may end on the moving clock, never a lease or a request.
                o.LeaseDuration = TimeSpan.FromHours(1);
                o.RequestTimeout = TimeSpan.FromMinutes(10);

                // The dispatcher's own handling is the subject, not Polly's quick retries.
                o.MaxRequestRetries = 0;
            },
            clock);
        await harness.StandIn.WaitUntilAsync(s => s.Events.Select(e => e.UserId).Distinct().Count() == 1000, TimeSpan.FromSeconds(90));
        await harness.WaitForOutboxAsync(rows => rows.Count == 0, TimeSpan.FromSeconds(60));
        await stopClock.CancelAsync();
        await driving;
        Assert.Contains(harness.StandIn.Requests, r => r.StatusCode is 500 or 503);
        Assert.Contains(harness.StandIn.Requests, r => r.StatusCode == 429);
    }
}
