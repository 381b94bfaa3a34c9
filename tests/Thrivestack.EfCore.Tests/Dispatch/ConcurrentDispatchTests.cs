using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>Several requests in flight: each user's order kept, the number found at run time, the lease held.</summary>
public sealed class ConcurrentDispatchTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>The first wait of a backoff or pause in the tests that stage holds: the first hold lasts 30-60 s.</summary>
    private static readonly TimeSpan BaseDelay = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_BacklogWithSlowAnswers_KeepsSeveralRequestsInFlight()
    {
        // Answers slow enough that the network, not the database, is the wait even on a loaded machine: lanes open only then.
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(100);
        await harness.EnqueueAsync(Enumerable.Range(0, 400).Select(i => ($"u{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var probe = new InFlightProbe();

        await StartAsync(probe, o => o.MaxEventsPerBatch = 5);

        await harness.StandIn.WaitForEventsAsync(400, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        Assert.Equal(400, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
        Assert.InRange(probe.Peak, 2, 8);
    }

    [Fact]
    public async Task Dispatcher_MaxConcurrentRequestsOne_SendsOneRequestAtATime()
    {
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(20);
        await harness.EnqueueAsync(Enumerable.Range(0, 100).Select(i => ($"u{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var probe = new InFlightProbe();

        await StartAsync(probe, o =>
        {
            o.MaxEventsPerBatch = 5;
            o.MaxConcurrentRequests = 1;
        });

        await harness.StandIn.WaitForEventsAsync(100, Deadline);
        Assert.Equal(1, probe.Peak);
    }

    [Fact]
    public async Task Dispatcher_ManyUsersEditedWhileBatchesAreInFlightWithRandomDelays_KeepsEachUsersOrder()
    {
        var delays = new RandomDelayHandler(seed: 7, maxMilliseconds: 150);
        var host = harness.BuildHost(
            o => o.MaxEventsPerBatch = 3,
            services: s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => delays));
        await host.StartAsync();

        // 40 users, each edited 6 times in separate commits while earlier events of theirs are in flight.
        const int users = 40;
        const int edits = 6;
        await UserEdits.EnqueueAsync(harness, users, edits, arrivedPerRound: 10, Deadline);

        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.Empty(UserEdits.OutOfOrder(harness.StandIn, users, edits));
        Assert.True(delays.Peak > 1, $"at most {delays.Peak} request in flight");
    }

    [Fact]
    public async Task Dispatcher_AcknowledgementFindsTheRowsLeasedToAnother_CountsThemAsLostNotDelivered()
    {
        await harness.EnqueueAsync([("taken", null)]);
        var thief = new LeaseThiefHandler(harness.Database);
        var host = harness.BuildHost(
            o => o.MaxRequestRetries = 0,
            services: s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => thief));
        using var recorder = new MeterRecorder(host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
        await host.StartAsync();

        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        var line = await WaitForLogAsync(37);
        Assert.Contains("1 of 1 rows to be marked delivered", line.Message);
        Assert.Equal(1, recorder.Sum("thrivestack.identify.events.lease_lost"));
        Assert.Equal(0, recorder.Sum("thrivestack.identify.events.delivered"));
        var row = Assert.Single(await harness.RowsAsync());
        Assert.Equal(OutboxRowState.Pending, row.State);
        Assert.Equal(thief.Lease, row.LeaseId);
    }

    [Fact]
    public async Task Dispatcher_RequestUnansweredNearItsLeasesEnd_IsAbandonedAndItsRowsReleasedUnspent()
    {
        await harness.EnqueueAsync([("slow", null)]);
        var clock = new WatchedClock();
        var hold = new HoldFirstRequestHandler();
        var lease = TimeSpan.FromMinutes(10);
        var host = harness.BuildHost(
            o =>
            {
                o.LeaseDuration = lease;
                o.RequestTimeout = TimeSpan.FromMinutes(8);
                o.MaxRequestRetries = 0;
                o.PollInterval = TimeSpan.FromHours(1);
            },
            clock,
            s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => hold));
        await host.StartAsync();
        await hold.Held.WaitAsync(Deadline);

        // Nine tenths of the lease: the request is abandoned while the row is still ours, and the row goes back unspent.
        clock.Advance(lease * 0.9);

        var line = await WaitForLogAsync(36);
        Assert.Contains("no answer before its lease", line.Message);

        // Released, not charged: claimed again at once and delivered by the next request, with no retry recorded.
        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.Equal("slow", Assert.Single(harness.StandIn.Events).UserId);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(5) || l.Is(6));
    }

    [Fact]
    public async Task Dispatcher_RetryAfterOnABacklog_HoldsEveryLaneUntilThen()
    {
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"r{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var clock = new WatchedClock();
        var refusal = new RefuseFirstWhileOthersWaitHandler(clock, othersInFlight: 2);
        var host = harness.BuildHost(
            o =>
            {
                o.MaxEventsPerBatch = 5;
                o.MaxRequestRetries = 0;
                o.RetryMaxDelay = TimeSpan.FromMinutes(5);
                o.PollInterval = TimeSpan.FromHours(1);
            },
            clock,
            s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => refusal));
        await host.StartAsync();

        // The first request is refused with Retry-After: 30 while two other lanes' requests are in flight; the lane that
        // reads the answer logs the warning while it sets the hold (both under the dispatcher's state lock).
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(32)), Deadline);

        // Those requests now succeed; their lanes acknowledge them and hold instead of sending their pages' next batches
        // (a lane that did not would send its next batch while the acknowledgement is written).
        var held = refusal.Release();
        Assert.True(held >= 2, $"{held} requests were in flight beside the refused one");
        await await Task.WhenAny(refusal.SentDuringTheHold, harness.WaitForOutboxAsync(rows => rows.Count <= 200 - (5 * held), Deadline));
        Assert.False(refusal.SentDuringTheHold.IsCompleted, "a lane sent a request while Retry-After held every lane");
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(8));

        clock.Advance(TimeSpan.FromSeconds(30));
        await harness.StandIn.WaitForEventsAsync(200, Deadline);
        Assert.False(refusal.SentDuringTheHold.IsCompleted, "a lane sent a request while Retry-After held every lane");
    }

    [Fact]
    public async Task Dispatcher_RetryAfterBesideASuccess_IsOneEpisodeUntilTheHoldEnds()
    {
        // Three lanes' requests in flight: 1 is refused with Retry-After, 2 goes through during the hold, 3 is refused with
        // Retry-After after that. One episode: one warning, no "resumed" while every lane is held, one once it is over.
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"e{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var passing = ScriptedAnswers.Gate();
        var third = ScriptedAnswers.Gate();
        var answers = new ScriptedAnswers(3, n => n switch
        {
            1 => (HttpStatusCode.TooManyRequests, null),
            3 => (HttpStatusCode.TooManyRequests, third),
            _ => (ScriptedAnswers.Pass, passing),
        });
        var clock = new WatchedClock();
        var host = answers.BuildHost(harness, clock);
        await host.StartAsync();
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(32)), Deadline);

        passing.TrySetResult();
        await harness.WaitForOutboxAsync(rows => rows.Count <= 195, Deadline);

        // Request 3's refusal is read while every lane is still held: it was in flight when request 1's set the hold, so it
        // joins that episode (log 45). Read only after the hold ended, it would follow request 2's delivery, which ended the
        // episode, and be news (see Dispatcher_RefusalOfARequestSentAfterTheOneThatEndedThePause_PausesAgain).
        third.TrySetResult();
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(45)), Deadline);
        Assert.Equal(2, answers.Refusals);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(8));

        // The hold ends, and with it the episode. (The lane that read request 3 starts its wait for the hold's rest just
        // after logging it: a wait started after the clock moved is ended by moving it again.)
        var delivered = harness.StandIn.WaitForEventsAsync(200, Deadline);
        for (var advances = 0; advances < 3 && !delivered.IsCompleted; advances++)
        {
            var holds = clock.CountWaits(Hold);
            clock.Advance(TimeSpan.FromMinutes(5));
            await Task.WhenAny(delivered, clock.WaitForWaitsAsync(holds + 1, Hold, Deadline));
        }

        await delivered;
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(8)), Deadline);
        Assert.Single(harness.Logs.Lines, l => l.Is(32));
        Assert.Single(harness.Logs.Lines, l => l.Is(8));
    }

    [Fact]
    public async Task Dispatcher_RetryAfterToARequestSentBeforeOneThatWentThrough_HoldsNothing()
    {
        // Request 1's Retry-After arrives after request 2, sent later by another lane, went through: it describes the
        // server as it was. No hold, no warning: the backlog drains on a clock that never moves.
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"o{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var late = ScriptedAnswers.Gate();
        var answers = new ScriptedAnswers(2, n => n == 1 ? (HttpStatusCode.TooManyRequests, late) : (ScriptedAnswers.Pass, null));
        var clock = new WatchedClock();
        await answers.BuildHost(harness, clock).StartAsync();

        await harness.WaitForOutboxAsync(rows => rows.Count <= 195, Deadline);
        late.TrySetResult();
        var delivered = harness.StandIn.WaitForEventsAsync(200, Deadline);
        await Task.WhenAny(delivered, clock.WaitForWaitsAsync(1, due => due >= TimeSpan.FromSeconds(20) && due <= TimeSpan.FromMinutes(5), Deadline));

        Assert.True(delivered.IsCompletedSuccessfully, "the lanes were held by a Retry-After older than a delivery");
        Assert.Equal(1, answers.Refusals);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(32));
    }

    [Theory]
    [InlineData(HttpStatusCode.TooManyRequests, 32, 46)]
    [InlineData(HttpStatusCode.Unauthorized, 7, 47)]
    public async Task Dispatcher_RefusalAfterALaterRequestWentThroughDuringTheHold_StartsANewEpisodeAtTheBaseDelay(HttpStatusCode refusal, int warning, int recurs)
    {
        // A server that refuses one request of a round and takes the others: request 1 is refused (a Retry-After, or a
        // 401 that pauses) and holds every lane; request 2, sent after it, goes through during the hold; once the hold is
        // over, request 3 is refused too. ThriveStack took a request sent after the first refusal, so that was one episode
        // and this is the next: its backoff or pause starts again from the base delay (60 s: 30-60 s), never doubling
        // towards RetryMaxDelay round after round. It began right after the first ended: one line says holds recur, and
        // the hold's own line and its end are logged at Debug, not a warning and "resumed" every round.
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"n{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var during = ScriptedAnswers.Gate();
        var later = ScriptedAnswers.Gate();
        var answers = new ScriptedAnswers(2, n => n switch
        {
            1 or 3 => (refusal, null),
            2 => (ScriptedAnswers.Pass, during),
            _ => (ScriptedAnswers.Pass, later),
        });
        var clock = await StartHeldAsync(answers);

        during.TrySetResult();
        await harness.WaitForOutboxAsync(rows => rows.Count <= 195, Deadline);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(8));
        var holds = clock.CountWaits(Hold);
        clock.Advance(BaseDelay);
        await clock.WaitForWaitsAsync(holds + 1, Hold, Deadline);

        Assert.Equal(2, answers.Refusals);
        Assert.Equal(0, clock.CountWaits(due => due >= BaseDelay && Hold(due)));
        Assert.Equal(2, harness.Logs.Lines.Count(l => l.Is(warning)));
        Assert.Single(harness.Logs.Lines, l => l.Is(warning) && l.Level >= LogLevel.Warning);
        Assert.Single(harness.Logs.Lines, l => l.Is(recurs));
        Assert.Single(harness.Logs.Lines, l => l.Is(8) && l.Level == LogLevel.Information);
        later.TrySetResult();
        clock.Advance(TimeSpan.FromMinutes(5));
        await harness.StandIn.WaitForEventsAsync(200, Deadline);
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Count(8) == 2, Deadline);
        Assert.Single(harness.Logs.Lines, l => l.Is(8) && l.Level == LogLevel.Information);
    }

    [Theory]
    [InlineData(HttpStatusCode.TooManyRequests, 32, LogLevel.Warning, 46)]
    [InlineData(HttpStatusCode.Unauthorized, 7, LogLevel.Error, 47)]
    public async Task Dispatcher_RecurringHoldThatLastsAWindow_IsLoggedAtItsOwnLevelAgain(HttpStatusCode refusal, int line, LogLevel level, int recurs)
    {
        // Request 1 is refused, request 2 goes through during the hold: one episode, over when the hold is. Then every
        // request is refused (a token revoked for good, an outage): the next hold begins right after the first ended, so it
        // is taken for a recurrence (Debug, and one line saying holds recur); once it has lasted the 10-minute window with
        // nothing sent after it delivered, it is no refusal now and then, and its own line is logged at its own level again.
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"s{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var during = ScriptedAnswers.Gate();
        var answers = new ScriptedAnswers(2, n => n == 2 ? (ScriptedAnswers.Pass, during) : (refusal, null));
        var clock = await StartHeldAsync(answers);
        during.TrySetResult();
        await harness.WaitForOutboxAsync(rows => rows.Count <= 195, Deadline);

        clock.Advance(TimeSpan.FromMinutes(5));
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(recurs)), Deadline);
        var recurrenceBegan = clock.GetUtcNow();
        Assert.Single(harness.Logs.Lines, l => l.Is(line) && l.Level == level);
        Assert.Single(harness.Logs.Lines, l => l.Is(line) && l.Level == LogLevel.Debug);
        Assert.Contains("(recurrence 1, recurring since 20", Assert.Single(harness.Logs.Lines, l => l.Is(recurs)).Message, StringComparison.Ordinal);

        // The hold steps on while every request is refused; the line comes again once, when it has lasted 10 minutes.
        bool Loud() => harness.Logs.Lines.Count(l => l.Is(line) && l.Level == level) == 2;
        for (var advances = 0; advances < 8 && !Loud(); advances++)
        {
            var holds = clock.CountWaits(Hold);
            clock.Advance(TimeSpan.FromMinutes(5));
            await Task.WhenAny(
                harness.StandIn.WaitUntilAsync(_ => Loud(), Deadline),
                clock.WaitForWaitsAsync(holds + 1, Hold, Deadline));
        }

        Assert.True(Loud(), "a recurring hold that lasted 10 minutes was not logged at its own level again");
        Assert.InRange(clock.GetUtcNow() - recurrenceBegan, TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(20));
        Assert.Single(harness.Logs.Lines, l => l.Is(recurs));
    }

    [Fact]
    public async Task Dispatcher_RefusalOfARequestSentAfterTheOneThatEndedThePause_PausesAgain()
    {
        // Requests 1, 2 and 3 are in flight together; 1's token is refused and every lane pauses. 2 goes through during the
        // pause, which ends with the wait. Only then is 3 refused: it was in flight when the pause began, but sent after 2,
        // the request that ended it, so it is the newest word on the token and pauses again (a recurrence: log 47).
        await harness.EnqueueAsync(Enumerable.Range(0, 300).Select(i => ($"t{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var during = ScriptedAnswers.Gate();
        var third = ScriptedAnswers.Gate();
        var later = ScriptedAnswers.Gate();
        var answers = new ScriptedAnswers(3, n => n switch
        {
            1 => (HttpStatusCode.Unauthorized, null),
            2 => (ScriptedAnswers.Pass, during),
            3 => (HttpStatusCode.Unauthorized, third),
            _ => (ScriptedAnswers.Pass, later),
        });
        var clock = await StartHeldAsync(answers, lanes: 3);
        during.TrySetResult();
        await harness.WaitForOutboxAsync(rows => rows.Count <= 295, Deadline);
        clock.Advance(TimeSpan.FromMinutes(5));
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(8)), Deadline);

        third.TrySetResult();
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(47) || l.Is(45)), Deadline);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(45));
        Assert.Equal(2, harness.Logs.Lines.Count(l => l.Is(7)));
        later.TrySetResult();
        clock.Advance(TimeSpan.FromMinutes(5));
        await harness.StandIn.WaitForEventsAsync(300, Deadline);
    }

    [Fact]
    public async Task Dispatcher_PauseAndOutageEndingTogether_ResumedAtTheLouderOfTheirLevels()
    {
        // One lane. An outage (1, 2) backs off and a delivery ends it (3). A token refusal pauses (4: news, an error) and,
        // before anything goes through, the outage is back (5, 6): it began within 10 minutes of the first backoff's end,
        // a recurrence, whose end is Debug. The next delivery ends both at once in one "resumed" line, at the louder of the
        // two levels: the pause was news, so its end is too.
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"b{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var answers = new ScriptedAnswers(1, n => n switch
        {
            1 or 2 or 5 or 6 => (HttpStatusCode.ServiceUnavailable, null),
            4 => (HttpStatusCode.Unauthorized, null),
            _ => (ScriptedAnswers.Pass, null),
        });
        var clock = await StartHeldAsync(answers, lanes: 1);

        // Ends holds until the step the plan stages has been logged. Each refusal pair above is one step when the second
        // request is the cycle's probe; should a step take a hold of its own, the clock moves on once more.
        async Task EndHoldAsync(Func<bool> next)
        {
            for (var advances = 0; !next(); advances++)
            {
                Assert.True(advances < 3, $"the plan's next step did not come after {advances} holds; lines: {Trace()}");
                var holds = clock.CountWaits(Hold);
                clock.Advance(TimeSpan.FromMinutes(5));
                await Task.WhenAny(harness.StandIn.WaitUntilAsync(_ => next(), Deadline), clock.WaitForWaitsAsync(holds + 1, Hold, Deadline));
            }
        }

        await EndHoldAsync(() => harness.Logs.Lines.Any(l => l.Is(7)));
        Assert.True(harness.Logs.Lines.Count(l => l.Is(8) && l.Level == LogLevel.Information) == 1, Trace());
        Assert.True(harness.Logs.Lines.Count(l => l.Is(7) && l.Level == LogLevel.Error) == 1, Trace());
        await EndHoldAsync(() => harness.Logs.Lines.Any(l => l.Is(46)));
        Assert.True(harness.Logs.Lines.Count(l => l.Is(46)) == 1, Trace());
        Assert.True(harness.Logs.Lines.Count(l => l.Is(32) && l.Level == LogLevel.Debug) == 1, Trace());
        await EndHoldAsync(() => harness.Logs.Count(8) == 2);

        await harness.StandIn.WaitForEventsAsync(200, Deadline);
        Assert.Equal(5, answers.Refusals);
        Assert.True(harness.Logs.Lines.Count(l => l.Is(8) && l.Level == LogLevel.Information) == 2, Trace());
    }

    // The dispatcher's episode lines so far, for a failure's message: which step came when.
    private string Trace() =>
        string.Join(", ", harness.Logs.Lines.Where(l => l.Category.StartsWith("Thrivestack", StringComparison.Ordinal) && l.EventId.Id is 7 or 8 or 32 or 45 or 46 or 47)
            .Select(l => $"{l.EventId.Id}/{l.Level}"));

    [Fact]
    public async Task Dispatcher_OutageAnswerOfARequestInFlightWhenAPauseBegan_StartsNoBackoff()
    {
        // Requests 1 and 2 are in flight together; 1's token is refused and every lane pauses. 2's answer, a 503, describes
        // the same moment: it belongs to the pause's step and starts no backoff of its own (no warning 32, whose hint would
        // point at the endpoint while nothing has gone through).
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"o{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var second = ScriptedAnswers.Gate();
        var later = ScriptedAnswers.Gate();
        var answers = new ScriptedAnswers(2, n => n switch
        {
            1 => (HttpStatusCode.Unauthorized, null),
            2 => (HttpStatusCode.ServiceUnavailable, second),
            _ => (ScriptedAnswers.Pass, later),
        });
        var clock = await StartHeldAsync(answers);
        second.TrySetResult();
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(45)), Deadline);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(32));

        later.TrySetResult();
        clock.Advance(TimeSpan.FromMinutes(5));
        await harness.StandIn.WaitForEventsAsync(200, Deadline);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(32));
        Assert.Single(harness.Logs.Lines, l => l.Is(7));
    }

    [Theory]
    [InlineData(HttpStatusCode.TooManyRequests, 32)]
    [InlineData(HttpStatusCode.Unauthorized, 7)]
    public async Task Dispatcher_RefusalOfARequestInFlightWhenTheHoldBegan_ReadAfterItEnded_StepsNothing(HttpStatusCode refusal, int warning)
    {
        // Requests 1 and 2 are in flight together; 1 is refused and holds every lane. The hold ends; only then is 2's
        // refusal read. It describes the same moment as 1's: no second step of the backoff or pause (it would hold every
        // lane again, for 60-120 s), no second warning; it is logged at Debug (log 45).
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"f{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var second = ScriptedAnswers.Gate();
        var later = ScriptedAnswers.Gate();
        var answers = new ScriptedAnswers(2, n => n switch
        {
            1 => (refusal, null),
            2 => (refusal, second),
            _ => (ScriptedAnswers.Pass, later),
        });
        var clock = await StartHeldAsync(answers);
        var holds = clock.CountWaits(Hold);
        clock.Advance(BaseDelay);

        second.TrySetResult();
        await Task.WhenAny(
            harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(45)), Deadline),
            clock.WaitForWaitsAsync(holds + 1, Hold, Deadline));
        Assert.Equal(holds, clock.CountWaits(Hold));
        Assert.Single(harness.Logs.Lines, l => l.Is(warning));
        Assert.Equal(2, answers.Refusals);

        later.TrySetResult();
        await harness.StandIn.WaitForEventsAsync(200, Deadline);
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(8)), Deadline);
        Assert.Single(harness.Logs.Lines, l => l.Is(warning));
    }

    [Fact]
    public async Task Dispatcher_CommitSoonAfterRowsWereClaimed_LingersBeforeClaimingButNotAfterAQuietSpell()
    {
        var clock = new WatchedClock();
        var poll = TimeSpan.FromHours(1);
        var host = harness.BuildHost(o => o.PollInterval = poll, clock);
        await host.StartAsync();
        await clock.WaitForWaitsAsync(1, d => d == poll, Deadline);

        // A commit after a quiet spell is claimed at once.
        await DispatchHarness.SaveUsersAsync(host, 1, "first");
        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await clock.WaitForWaitsAsync(2, d => d == poll, Deadline);

        // A commit right after that claim: the dispatcher lingers, so commits close together share one claim.
        await DispatchHarness.SaveUsersAsync(host, 1, "second");
        await clock.WaitForWaitsAsync(1, d => d == OutboxDispatcher<TestDbContext>.Linger, Deadline);
        Assert.Single(harness.StandIn.Events);
        clock.Advance(OutboxDispatcher<TestDbContext>.Linger);
        await harness.StandIn.WaitForEventsAsync(2, Deadline);
        await clock.WaitForWaitsAsync(3, d => d == poll, Deadline);

        // Quiet again: no linger.
        clock.Advance(OutboxDispatcher<TestDbContext>.BusyWindow);
        await DispatchHarness.SaveUsersAsync(host, 1, "third");
        await harness.StandIn.WaitForEventsAsync(3, Deadline);
        await clock.WaitForWaitsAsync(4, d => d == poll, Deadline);
        Assert.Equal(1, clock.CountWaits(d => d == OutboxDispatcher<TestDbContext>.Linger));
    }

    [Fact]
    public async Task Dispatcher_IdleWithEightLanes_PollsWithOneLaneOnly()
    {
        var clock = new WatchedClock();
        var poll = TimeSpan.FromSeconds(1);
        var host = harness.BuildHost(o => o.PollInterval = poll, clock);
        await host.StartAsync();

        // Ten poll intervals: one lane's wait each (lanes that all polled would start up to eight per interval).
        for (var i = 1; i <= 10; i++)
        {
            await clock.WaitForWaitsAsync(i, d => d == poll, Deadline);
            clock.Advance(poll);
        }

        await clock.WaitForWaitsAsync(11, d => d == poll, Deadline);
        Assert.Equal(11, clock.CountWaits(d => d == poll));
    }

    private async Task<IHost> StartAsync(InFlightProbe probe, Action<Thrivestack.EfCore.ThrivestackOptions> configure)
    {
        var host = harness.BuildHost(configure, services: probe.AddTo);
        await host.StartAsync();
        return host;
    }

    private Task<LogCollector.LogLine> WaitForLogAsync(int eventId) => harness.Logs.WaitForAsync(l => l.Is(eventId), Deadline);

    /// <summary>While the request is in flight, another dispatcher takes the rows (their lease ended), as a stalled process would find.</summary>
    private sealed class LeaseThiefHandler(TestDatabase database) : DelegatingHandler
    {
        public Guid Lease { get; } = Guid.NewGuid();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            await using (var context = database.CreateContext())
            {
                await context.Set<OutboxMessage>().ExecuteUpdateAsync(
                    s => s.SetProperty(m => m.LeaseId, Lease).SetProperty(m => m.LeaseOwner, "another").SetProperty(m => m.LeaseExpiresAt, DateTime.UtcNow.AddMinutes(1)),
                    cancellationToken);

                // On SQLite the rows are the outbox-wide lease's: another dispatcher takes that.
                await context.Set<BackfillCheckpoint>().Where(c => c.Name == DispatcherLeaseSql.Name).ExecuteUpdateAsync(
                    s => s.SetProperty(c => c.LockOwner, "another").SetProperty(c => c.LockExpiresAt, DateTime.UtcNow.AddMinutes(1)),
                    cancellationToken);
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>
    /// Holds the first request until <c>othersInFlight</c> more have started (held too), then answers it 429 with
    /// Retry-After: 30. <see cref="Release"/> passes the held ones on; a request that starts after that and before the
    /// clock reaches the end of the Retry-After completes <see cref="SentDuringTheHold"/>.
    /// </summary>
    private sealed class RefuseFirstWhileOthersWaitHandler(TimeProvider clock, int othersInFlight) : DelegatingHandler
    {
        private readonly Lock gate = new();
        private readonly TaskCompletionSource othersStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource sentDuringTheHold = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int count;
        private DateTimeOffset? holdEnds;

        public Task SentDuringTheHold => sentDuringTheHold.Task;

        /// <summary>Lets the held requests go on; returns how many there were.</summary>
        public int Release()
        {
            lock (gate)
            {
                holdEnds = clock.GetUtcNow() + TimeSpan.FromSeconds(30);
                released.TrySetResult();
                return count - 1;
            }
        }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            int number;
            lock (gate)
            {
                number = ++count;
                if (holdEnds is { } ends && clock.GetUtcNow() < ends)
                {
                    sentDuringTheHold.TrySetResult();
                }
            }

            if (number == 1)
            {
                await othersStarted.Task.WaitAsync(cancellationToken);
                var refused = new HttpResponseMessage(HttpStatusCode.TooManyRequests) { Content = new StringContent("""{"error":"Rate Limit Exceeded"}""") };
                refused.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(30));
                return refused;
            }

            if (number == 1 + othersInFlight)
            {
                othersStarted.TrySetResult();
            }

            if (!released.Task.IsCompleted)
            {
                await released.Task.WaitAsync(cancellationToken);
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }

    // A wait of the fake clock that is a hold of every lane (a backoff, a pause), not a poll or a lease.
    private static bool Hold(TimeSpan due) => due >= TimeSpan.FromSeconds(20) && due <= TimeSpan.FromMinutes(5);

    // Lanes answered by the script, holds from BaseDelay; returns once the first request's answer holds every lane.
    private async Task<WatchedClock> StartHeldAsync(ScriptedAnswers answers, int lanes = 2)
    {
        var clock = new WatchedClock();
        await answers.BuildHost(harness, clock, o => (o.MaxConcurrentRequests, o.RetryBaseDelay) = (lanes, BaseDelay)).StartAsync();
        await clock.WaitForWaitsAsync(1, Hold, Deadline);
        return clock;
    }

    /// <summary>Holds the first request until its token is cancelled; passes later ones.</summary>
    private sealed class HoldFirstRequestHandler : DelegatingHandler
    {
        private readonly TaskCompletionSource held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int count;

        public Task Held => held.Task;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref count) == 1)
            {
                held.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }
}
