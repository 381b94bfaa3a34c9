using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>Nothing ends the dispatcher's loop but the host's stop; outages spend no attempt; one bad event is isolated.</summary>
public sealed class DispatcherResilienceTests : IAsyncLifetime
{
    private const int MaxAttempts = 3;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan MovingStep = TimeSpan.FromMilliseconds(200);

    private DispatchHarness harness = null!;
    private LoopbackGateway gateway = null!;

    public async Task InitializeAsync()
    {
        harness = await DispatchHarness.StartAsync();
        gateway = await LoopbackGateway.StartAsync(harness.StandIn.Endpoint);
    }

    public async Task DisposeAsync()
    {
        await harness.DisposeAsync();
        await gateway.DisposeAsync();
    }

    [Theory]
    [InlineData("4294968")]
    [InlineData("Fri, 31 Dec 9999 23:59:59 GMT")]
    public async Task Dispatcher_RetryAfterOfThousandsOfYears_KeepsRunningAndProbesAgainAfterRetryMaxDelay(string retryAfter)
    {
        var answered = 0;
        gateway.Intercept = _ => Interlocked.Increment(ref answered) == 1 ? new LoopbackGateway.Answer(503, RetryAfter: retryAfter) : null;
        await harness.EnqueueAsync([("ra", null)]);
        var clock = new WatchedClock();
        var host = await harness.StartHostAsync(
            o =>
            {
                o.Endpoint = gateway.Endpoint;
                o.MaxRequestRetries = 0;
                o.RetryBaseDelay = TimeSpan.FromSeconds(1);
                o.RetryMaxDelay = MaxDelay;
            },
            clock);

        await clock.WaitForWaitsAsync(1, due => due == MaxDelay, Deadline);
        Assert.False(DispatchHarness.Dispatcher(host).ExecuteTask!.IsCompleted);
        clock.Advance(MaxDelay);

        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        Assert.Equal(2, gateway.Requests);
        Assert.False(DispatchHarness.Dispatcher(host).ExecuteTask!.IsCompleted);
    }

    [Fact]
    public async Task Dispatcher_ServerErrorWithRetryAfterWhileOthersGoThrough_RetriesTheRowOnlyOnceRetryAfterHasPassed()
    {
        var poll = TimeSpan.FromSeconds(30);
        var slowRequests = 0;
        gateway.Intercept = body => body.Contains("\"slow\"", StringComparison.Ordinal) && Interlocked.Increment(ref slowRequests) == 1
            ? new LoopbackGateway.Answer(503, RetryAfter: "120")
            : null;
        await harness.EnqueueAsync([("ok", null), ("slow", null)]);
        var clock = new WatchedClock();
        await harness.StartHostAsync(
            o =>
            {
                Options(o);
                o.MaxEventsPerBatch = 1;
                o.RetryBaseDelay = TimeSpan.FromSeconds(1);
                o.RetryMaxDelay = TimeSpan.FromMinutes(10);
                o.PollInterval = poll;
                o.LeaseDuration = TimeSpan.FromHours(1);
                o.RequestTimeout = TimeSpan.FromMinutes(10);
            },
            clock);

        // "ok" went through first, so the 503 counts against "slow": its row waits the 120 s the server asked for, not
        // the backoff of its first attempt (about a second).
        await clock.WaitForWaitsAsync(1, due => due == poll, Deadline);
        Assert.Single(harness.StandIn.EventsFor("ok"));
        Assert.Equal(1, Volatile.Read(ref slowRequests));
        for (var polls = 1; polls <= 3; polls++)
        {
            clock.Advance(poll);
            await clock.WaitForWaitsAsync(polls + 1, due => due == poll, Deadline);
            Assert.Equal(1, Volatile.Read(ref slowRequests));
        }

        clock.Advance(poll);
        await harness.StandIn.WaitForEventsAsync(2, Deadline);
        Assert.Equal(2, Volatile.Read(ref slowRequests));
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
    }

    [Fact]
    public async Task Dispatcher_UsersOlderEventWaitsForARetry_ItsNewerEventIsNotSentBeforeIt()
    {
        // Hand-written events are never coalesced: both of "u" travel, each in a batch of its own, in one claim.
        var refused = 0;
        gateway.Intercept = body => body.Contains("\"v\":1", StringComparison.Ordinal) && Interlocked.Increment(ref refused) == 1
            ? new LoopbackGateway.Answer(503)
            : null;
        await harness.EnqueueAsync(
        [
            ("ok", null),
            ("u", new Dictionary<string, object?> { ["v"] = 1 }),
            ("u", new Dictionary<string, object?> { ["v"] = 2 }),
        ]);

        var clock = new WatchedClock();
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(MovingStep, stopClock.Token);
        try
        {
            await harness.StartHostAsync(
                o =>
                {
                    MovingClockOptions(o);
                    o.MaxEventsPerBatch = 1;
                },
                clock);

            await harness.StandIn.WaitForEventsAsync(3, Deadline);
            await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        }
        finally
        {
            await stopClock.CancelAsync();
            await driving;
        }

        // "ok" went through first, so the 503 counted against v1, which waited for its retry: v2 only after it.
        Assert.True(Volatile.Read(ref refused) >= 2, "v1 was never sent again after its 503");
        Assert.Equal([1, 2], harness.StandIn.EventsFor("u").Select(e => e.Traits!.Value.GetProperty("v").GetInt32()));
    }

    [Fact]
    public async Task Dispatcher_CycleThrowsAnUnexpectedException_LogsABugAndKeepsRunning()
    {
        await harness.EnqueueAsync([("odd", null)]);
        var thrown = 0;
        var host = harness.BuildHost(Options, services: s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>())
            .AddHttpMessageHandler(() => new ThrowingHandler(() => Interlocked.Increment(ref thrown) == 1)));
        await host.StartAsync();

        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        var bug = Assert.Single(harness.Logs.Lines, l => l.Is(30));
        Assert.Equal(LogLevel.Error, bug.Level);
        Assert.Contains("unexpectedly", bug.Message);
        Assert.IsType<NotSupportedException>(bug.Exception);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(9));
        Assert.False(DispatchHarness.Dispatcher(host).ExecuteTask!.IsCompleted);
    }

    [Fact]
    public async Task Dispatcher_OutageLongerThanMaxAttemptsAfterDeliveries_DeadLettersNothingAndDeliversAfterRecovery()
    {
        var clock = new WatchedClock();
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(MovingStep, stopClock.Token);
        try
        {
            var host = await harness.StartHostAsync(MovingClockOptions, clock);
            await DispatchHarness.SaveUsersAsync(host, 2, "before");
            await harness.StandIn.WaitForEventsAsync(2, Deadline);

            harness.StandIn.Faults.FailNextRequests = 10_000;
            await DispatchHarness.SaveUsersAsync(host, 5, "during");
            await harness.StandIn.WaitUntilAsync(s => s.Requests.Count(r => r.StatusCode == 503) > MaxAttempts * 4, Deadline);
            Assert.All(await harness.RowsAsync(), r =>
            {
                Assert.Equal(OutboxRowState.Pending, r.State);
                Assert.True(r.Attempts <= 1, $"row {r.Id} spent {r.Attempts} attempts in an outage");
            });

            harness.StandIn.Faults.FailNextRequests = 0;
            await harness.StandIn.WaitForEventsAsync(7, Deadline);
            await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        }
        finally
        {
            await stopClock.CancelAsync();
            await driving;
        }
    }

    [Fact]
    public async Task Dispatcher_OneUsersEventsFailWhileOthersGoThrough_DeadLettersItAfterMaxAttempts()
    {
        gateway.Intercept = body => body.Contains("\"poison\"", StringComparison.Ordinal) ? new LoopbackGateway.Answer(503) : null;
        await harness.EnqueueAsync([("poison", null)]);

        // The poison row's backoffs run on the fake clock, moved on whenever the dispatcher waits.
        var clock = new WatchedClock();
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(MovingStep, stopClock.Token);
        try
        {
            var host = await harness.StartHostAsync(MovingClockOptions, clock);

            // Others keep going through around the poison event's retries.
            for (var round = 0; round < 100 && !(await harness.RowsAsync()).Any(r => r.State == OutboxRowState.DeadLettered); round++)
            {
                await DispatchHarness.SaveUsersAsync(host, 1, $"other{round}-");
                await harness.WaitForOutboxAsync(rows => rows.All(r => r.UserId == "poison"), Deadline);
            }
        }
        finally
        {
            await stopClock.CancelAsync();
            await driving;
        }

        var dead = Assert.Single(await harness.RowsAsync());
        Assert.Equal(OutboxRowState.DeadLettered, dead.State);
        Assert.Equal(MaxAttempts, dead.Attempts);
        Assert.Contains("HTTP 503", dead.LastError);
        Assert.Empty(harness.StandIn.EventsFor("poison"));

        // The dead-letter line is written just after the row changes.
        await harness.Logs.WaitForAsync(l => l.Is(6), Deadline);

        Assert.Single(harness.Logs.Lines, l => l.Is(6));

        // Each counted failure but the last says "retried later"; the last one is logged as the dead letter only.
        Assert.Equal(MaxAttempts - 1, harness.Logs.Lines.Count(l => l.Is(5)));
    }

    [Theory]
    [InlineData(403)]
    [InlineData(500)]
    public async Task Dispatcher_BatchRefusedForOneEventsContent_IsolatesItAndDeliversTheOthers(int status)
    {
        gateway.Intercept = body => body.Contains("\"culprit\"", StringComparison.Ordinal) ? new LoopbackGateway.Answer(status) : null;
        var innocents = Enumerable.Range(0, 7).Select(i => $"i{i}").ToList();
        await harness.EnqueueAsync(innocents.Take(3).Append("culprit").Concat(innocents.Skip(3)).Select(u => (u, (IReadOnlyDictionary<string, object?>?)null)));

        // One attempt: the failure that the isolation pins on the culprit (others went through) dead-letters it.
        await harness.StartHostAsync(o =>
        {
            Options(o);
            o.MaxAttempts = 1;
        });

        await harness.StandIn.WaitForEventsAsync(innocents.Count, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 1 && rows[0].State == OutboxRowState.DeadLettered, Deadline);
        var dead = Assert.Single(await harness.RowsAsync());
        Assert.Equal("culprit", dead.UserId);
        Assert.Contains($"HTTP {status}", dead.LastError);
        Assert.All(innocents, u => Assert.Single(harness.StandIn.EventsFor(u)));
        Assert.Contains(harness.Logs.Lines, l => l.Is(33) && l.Message.Contains("batch of 8 events"));
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(7));
    }

    [Fact]
    public async Task Dispatcher_OutageWithSeveralBatchesClaimed_ProbesWithOneOtherBatchInsteadOfSplitting()
    {
        harness.StandIn.Faults.FailNextRequests = 1_000;
        await harness.EnqueueAsync(Enumerable.Range(0, 10).Select(i => ($"b{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var clock = new WatchedClock();
        await harness.StartHostAsync(
            o =>
            {
                Options(o);
                o.MaxEventsPerBatch = 2;

                // One lane: what a lane does with its page in an outage (several lanes would each send their first batch).
                o.MaxConcurrentRequests = 1;
                o.RetryBaseDelay = TimeSpan.FromSeconds(1);
                o.RetryMaxDelay = MaxDelay;
            },
            clock);

        // Parked on the backoff after the first cycle: the first batch and one probe, nothing split.
        await clock.WaitForWaitsAsync(1, due => due > TimeSpan.Zero && due <= MaxDelay, Deadline);
        Assert.Equal(2, gateway.Requests);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(33));
        Assert.All(await harness.RowsAsync(), r => Assert.Equal(0, r.Attempts));
    }

    [Fact]
    public async Task Dispatcher_ForbiddenOnEveryRequest_PausesWithoutSplittingForeverOrSpendingAttempts()
    {
        gateway.Intercept = _ => new LoopbackGateway.Answer(403);
        await harness.EnqueueAsync(Enumerable.Range(0, 8).Select(i => ($"f{i}", (IReadOnlyDictionary<string, object?>?)null)));

        // The pauses run on the fake clock, moved on whenever the dispatcher waits.
        var clock = new WatchedClock();
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(MovingStep, stopClock.Token);
        try
        {
            await harness.StartHostAsync(MovingClockOptions, clock);
            await harness.StandIn.WaitUntilAsync(_ => gateway.Requests > 40, Deadline);
        }
        finally
        {
            await stopClock.CancelAsync();
            await driving;
        }

        Assert.Single(harness.Logs.Lines, l => l.Is(7));
        Assert.All(await harness.RowsAsync(), r =>
        {
            Assert.Equal(OutboxRowState.Pending, r.State);
            Assert.Equal(0, r.Attempts);
        });
    }

    [Fact]
    public async Task Dispatcher_RowsLeasedUnderAClockAnHourAhead_AreSentWithoutWaitingTheHour()
    {
        await harness.EnqueueAsync([("c1", null), ("c2", null)]);

        // The fake clock never moves: the lease an hour ahead is only ignored because no lease can be that long.
        var clock = new WatchedClock();
        await harness.LeaseToDeadDispatcherAsync(clock.GetUtcNow().UtcDateTime.AddHours(1));
        await harness.StartHostAsync(Options, clock);

        await harness.StandIn.WaitForEventsAsync(2, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
    }

    // Every request goes through the gateway, which forwards to the stand-in unless a test intercepts.
    private void Options(ThrivestackOptions o)
    {
        o.Endpoint = gateway.Endpoint;
        o.MaxRequestRetries = 0;
        o.MaxAttempts = MaxAttempts;
    }

    // On a clock that moves on by MovingStep at every wait, only backoffs, pauses and polls (at most RetryMaxDelay) may
    // end, never a lease or a request.
    private void MovingClockOptions(ThrivestackOptions o)
    {
        Options(o);
        o.PollInterval = MovingStep;
        o.RetryMaxDelay = MovingStep;
        o.LeaseDuration = TimeSpan.FromHours(1);
        o.RequestTimeout = TimeSpan.FromMinutes(10);
    }

    private sealed class ThrowingHandler(Func<bool> shouldThrow) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            shouldThrow() ? throw new NotSupportedException("a bug in a handler") : base.SendAsync(request, cancellationToken);
    }
}
