using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Testing;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

public sealed class DispatcherAuthTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Dispatcher_ApiKeyHeaderAgainstApiKeyStandIn_Delivers()
    {
        await using var harness = await DispatchHarness.StartAsync(standInOptions: new ThrivestackStandInOptions { AuthHeader = StandInAuthHeader.ApiKey });
        await harness.EnqueueAsync([("k1", null), ("k2", null)]);

        await harness.StartHostAsync(o => o.AuthHeader = ThrivestackAuthHeader.ApiKey);

        await harness.StandIn.WaitForEventsAsync(2, Deadline);
        Assert.All(harness.StandIn.Requests, r => Assert.Equal(200, r.StatusCode));
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
    }

    [Fact]
    public async Task Dispatcher_BearerHeaderAgainstApiKeyStandIn_PausesWithoutSpendingAttempts()
    {
        await using var harness = await DispatchHarness.StartAsync(standInOptions: new ThrivestackStandInOptions { AuthHeader = StandInAuthHeader.ApiKey });
        await harness.EnqueueAsync([("b1", null), ("b2", null)]);

        await harness.StartHostAsync(o => o.AuthHeader = ThrivestackAuthHeader.Bearer);

        await harness.StandIn.WaitUntilAsync(s => s.Requests.Count(r => r.StatusCode == 401) >= 3, Deadline);
        Assert.Equal(0, harness.StandIn.AcceptedEventCount);
        Assert.Single(harness.Logs.Lines, l => l.Is(7));
        Assert.All(await harness.RowsAsync(), r =>
        {
            Assert.Equal(OutboxRowState.Pending, r.State);
            Assert.Equal(0, r.Attempts);
        });
    }

    [Fact]
    public async Task Dispatcher_TokenRotatedWithTokenProvider_AsksAgainAndDeliversWithoutPausing()
    {
        await using var harness = await DispatchHarness.StartAsync();
        harness.StandIn.ApiToken = "fresh-token";
        var calls = 0;
        await harness.EnqueueAsync([("r1", null), ("r2", null)]);

        await harness.StartHostAsync(o =>
        {
            o.ApiToken = null;
            o.MaxRequestRetries = 0;
            o.TokenProvider = _ => ValueTask.FromResult(Interlocked.Increment(ref calls) == 1 ? "stale-token" : "fresh-token");
        });

        await harness.StandIn.WaitForEventsAsync(2, Deadline);
        Assert.Equal([401, 200], harness.StandIn.Requests.Select(r => r.StatusCode));
        Assert.Equal(2, Volatile.Read(ref calls));
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(7));
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
    }

    [Fact]
    public async Task Dispatcher_TokenProviderStillStaleAfterRefresh_PausesWithoutSpendingAttempts()
    {
        await using var harness = await DispatchHarness.StartAsync();
        harness.StandIn.ApiToken = "fresh-token";
        await harness.EnqueueAsync([("s1", null)]);

        await harness.StartHostAsync(o =>
        {
            o.ApiToken = null;
            o.TokenProvider = _ => ValueTask.FromResult("stale-token");
        });

        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(7)), Deadline);
        var row = Assert.Single(await harness.RowsAsync());
        Assert.Equal(OutboxRowState.Pending, row.State);
        Assert.Equal(0, row.Attempts);
    }

    [Fact]
    public async Task Dispatcher_UnauthorizedWindow_PausesOnceSpendsNoAttemptAndResumes()
    {
        await using var harness = await DispatchHarness.StartAsync();
        harness.StandIn.Faults.Unauthorized = true;
        await harness.EnqueueAsync(Enumerable.Range(0, 6).Select(i => ($"w{i}", (IReadOnlyDictionary<string, object?>?)null)));

        // The pauses run on the fake clock, moved on by RetryMaxDelay whenever the dispatcher waits.
        var clock = new WatchedClock();
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(TimeSpan.FromMilliseconds(200), stopClock.Token);

        // Delivered rows are kept, so their attempts can be read after the pause too.
        await harness.StartHostAsync(
            o =>
            {
                o.MaxEventsPerBatch = 2;
                o.MaxAttempts = 2;
                o.DeliveredRetention = TimeSpan.FromHours(1);
                MovingClockOptions(o);
            },
            clock);

        // More failed probes than MaxAttempts: had they counted, every row would be dead-lettered by now.
        await harness.StandIn.WaitUntilAsync(s => s.Requests.Count(r => r.StatusCode == 401) >= 5, Deadline);
        Assert.All(await harness.RowsAsync(), r =>
        {
            Assert.Equal(OutboxRowState.Pending, r.State);
            Assert.Equal(0, r.Attempts);
        });
        var paused = Assert.Single(harness.Logs.Lines, l => l.Is(7));
        Assert.Contains("HTTP 401", paused.Message);

        // A rounded duration people read ("0.1 s"), not a TimeSpan ("00:00:00.1234567").
        Assert.Matches(@"paused for \d+(\.\d)? (ms|s|min|h|d)\.", paused.Message);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(8));

        harness.StandIn.Faults.Unauthorized = false;

        await harness.StandIn.WaitForEventsAsync(6, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.All(r => r.State == OutboxRowState.Delivered));
        Assert.All(await harness.RowsAsync(), r => Assert.Equal(0, r.Attempts));
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(8)), Deadline);
        Assert.Single(harness.Logs.Lines, l => l.Is(8));
        Assert.Single(harness.Logs.Lines, l => l.Is(7));
        await stopClock.CancelAsync();
        await driving;
    }

    [Fact]
    public async Task Dispatcher_RefusalOfARequestSentBeforeOneThatWentThrough_NeitherPausesNorLogs()
    {
        // A token fixed while requests were in flight: the refusal of one sent with the old token arrives after a later
        // request (another lane's) went through. It describes the token as it was.
        await using var harness = await DispatchHarness.StartAsync();
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"t{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var late = ScriptedAnswers.Gate();
        var answers = new ScriptedAnswers(2, n => n == 1 ? (HttpStatusCode.Unauthorized, late) : (ScriptedAnswers.Pass, null));
        await answers.BuildHost(harness, TimeProvider.System).StartAsync();

        // Other lanes' requests, sent after the held one, went through and were acknowledged; then the held one is refused.
        await harness.WaitForOutboxAsync(rows => rows.Count < 200, Deadline);
        late.TrySetResult();

        await harness.StandIn.WaitForEventsAsync(200, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.Equal(1, answers.Refusals);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(7));
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(8));
        Assert.Equal(200, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
    }

    [Fact]
    public async Task Dispatcher_SuccessOfARequestSentBeforeThePause_DoesNotEndIt()
    {
        // Request 1 is in flight while later ones are refused (401): the pause starts. Request 1's success then describes
        // the token as it was before the refusals; it must not say "resumed" or end the pause.
        await using var harness = await DispatchHarness.StartAsync();
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"p{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var late = ScriptedAnswers.Gate();
        var answers = new ScriptedAnswers(2, n => n == 1 ? (ScriptedAnswers.Pass, late) : (HttpStatusCode.Unauthorized, null));
        var clock = new WatchedClock();
        var host = answers.BuildHost(harness, clock, o => o.RetryBaseDelay = TimeSpan.FromSeconds(30));
        await host.StartAsync();
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(7)), Deadline);

        // Request 1 goes through and is acknowledged; then the hold ends, the next request is refused, and the pause goes on.
        late.TrySetResult();
        await harness.WaitForOutboxAsync(rows => rows.Count <= 195, Deadline);
        static bool Pause(TimeSpan due) => due >= TimeSpan.FromSeconds(10) && due <= TimeSpan.FromMinutes(5);
        var pauses = clock.CountWaits(Pause);
        clock.Advance(TimeSpan.FromMinutes(5));
        await clock.WaitForWaitsAsync(pauses + 1, Pause, Deadline);

        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(8));
        Assert.Single(harness.Logs.Lines, l => l.Is(7));
        Assert.NotNull(host.Services.GetRequiredService<DispatcherStatus<TestDbContext>>().AuthPausedSince);
    }

    [Theory]
    [InlineData(200)]
    [InlineData(25)]
    public async Task Dispatcher_RequestSentAfterTheRefusalWentThroughDuringThePause_EndsItWhenThePauseIsOver(int rows)
    {
        // Request 1 is refused (401) and pauses every lane; request 2, sent after it, goes through during the pause. The
        // pause ends when its time is up, before any further answer: request 3 is still in flight, and the health check
        // must not report a pause that is over. With 200 rows the second lane holds a page claimed ahead and waits out the
        // pause itself; with 25 it has nothing left, and only the first lane, waiting out its own hold, can end it.
        await using var harness = await DispatchHarness.StartAsync();
        await harness.EnqueueAsync(Enumerable.Range(0, rows).Select(i => ($"q{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var during = ScriptedAnswers.Gate();
        var later = ScriptedAnswers.Gate();
        var answers = new ScriptedAnswers(2, n => n switch
        {
            1 => (HttpStatusCode.Unauthorized, null),
            2 => (ScriptedAnswers.Pass, during),
            _ => (ScriptedAnswers.Pass, later),
        });
        var clock = new WatchedClock();
        var host = answers.BuildHost(harness, clock, o => (o.MaxConcurrentRequests, o.RetryBaseDelay) = (2, TimeSpan.FromSeconds(30)));
        await host.StartAsync();
        static bool Pause(TimeSpan due) => due >= TimeSpan.FromSeconds(10) && due <= TimeSpan.FromMinutes(5);
        await clock.WaitForWaitsAsync(1, Pause, Deadline);
        during.TrySetResult();
        await harness.WaitForOutboxAsync(left => left.Count <= rows - 5, Deadline);
        var status = host.Services.GetRequiredService<DispatcherStatus<TestDbContext>>();
        Assert.NotNull(status.AuthPausedSince);

        clock.Advance(TimeSpan.FromMinutes(5));
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(8)), Deadline);
        Assert.Null(status.AuthPausedSince);
        later.TrySetResult();
        await harness.StandIn.WaitForEventsAsync(rows, Deadline);
        Assert.Single(harness.Logs.Lines, l => l.Is(7));
    }

    [Fact]
    public async Task Dispatcher_TokenRefusedRightAfterADelivery_PausesWithoutSpendingAnAttempt()
    {
        await using var harness = await DispatchHarness.StartAsync();
        var clock = new WatchedClock();
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(TimeSpan.FromMilliseconds(200), stopClock.Token);
        try
        {
            var host = await harness.StartHostAsync(MovingClockOptions, clock);
            await DispatchHarness.SaveUsersAsync(host, 1, "before");
            await harness.StandIn.WaitForEventsAsync(1, Deadline);

            // Revoked while sending works: the last request went through, yet a 401 is never the event's fault.
            harness.StandIn.Faults.Unauthorized = true;
            await DispatchHarness.SaveUsersAsync(host, 1, "after");
            await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(7)), Deadline);
            var row = Assert.Single(await harness.RowsAsync());
            Assert.Equal(OutboxRowState.Pending, row.State);
            Assert.Equal(0, row.Attempts);

            harness.StandIn.Faults.Unauthorized = false;
            await harness.StandIn.WaitForEventsAsync(2, Deadline);
            await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        }
        finally
        {
            await stopClock.CancelAsync();
            await driving;
        }
    }

    [Fact]
    public async Task Dispatcher_SecondUnauthorizedWindow_LogsASecondPause()
    {
        await using var harness = await DispatchHarness.StartAsync();
        var clock = new WatchedClock();
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(TimeSpan.FromMilliseconds(200), stopClock.Token);
        var host = await harness.StartHostAsync(MovingClockOptions, clock);

        harness.StandIn.Faults.Unauthorized = true;
        await DispatchHarness.SaveUsersAsync(host, 1, "first");
        await harness.StandIn.WaitUntilAsync(s => s.Requests.Count(r => r.StatusCode == 401) >= 2, Deadline);
        harness.StandIn.Faults.Unauthorized = false;
        await harness.StandIn.WaitForEventsAsync(1, Deadline);

        harness.StandIn.Faults.Unauthorized = true;
        await DispatchHarness.SaveUsersAsync(host, 1, "second");
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Count(l => l.Is(7)) == 2, Deadline);
        harness.StandIn.Faults.Unauthorized = false;
        await harness.StandIn.WaitForEventsAsync(2, Deadline);
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Count(l => l.Is(8)) == 2, Deadline);
        await stopClock.CancelAsync();
        await driving;
    }

    // On a clock that moves on at every wait, only backoffs, pauses and polls (at most RetryMaxDelay) may end, never a
    // lease or a request.
    private static void MovingClockOptions(ThrivestackOptions o)
    {
        o.PollInterval = TimeSpan.FromMilliseconds(200);
        o.RetryMaxDelay = TimeSpan.FromMilliseconds(200);
        o.LeaseDuration = TimeSpan.FromHours(1);
        o.RequestTimeout = TimeSpan.FromMinutes(10);
    }
}
