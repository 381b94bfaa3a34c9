using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Dispatch;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>The number of requests in flight is found at run time: from the maximum, a drop on overload, additive increase.</summary>
public sealed class ConcurrencyLimiterTests
{
    private static readonly TimeSpan RoundTrip = TimeSpan.FromMilliseconds(100);

    private readonly FakeTimeProvider clock = new();

    [Fact]
    public void Limit_NewLimiter_IsTheConfiguredMaximum()
    {
        // A new host on a backlog sends its whole maximum in its first round trip; a refusal says otherwise.
        Assert.Equal(8, new ConcurrencyLimiter(8, clock).Limit);
        Assert.Equal(1, new ConcurrencyLimiter(1, clock).Limit);
        Assert.Equal(8, RoundTripAtLimit(new ConcurrencyLimiter(8, clock)));
    }

    [Fact]
    public void Record_SuccessesWhileTheLimitIsUsed_GrowOneARoundTripBackToTheMaximum()
    {
        var limiter = new ConcurrencyLimiter(8, clock);
        Overload(limiter, ahead: 3);
        Assert.Equal(3, limiter.Limit);

        // Past the probe near the refused level (four), one more each round trip.
        for (var round = 0; round < 2 * ConcurrencyLimiter.ProbeRounds && limiter.Limit < 4; round++)
        {
            RoundTripAtLimit(limiter);
        }

        Assert.Equal(4, (int)limiter.Limit);

        // Four at once go through: the refused level is taken to be lifted, and growth is one per round trip.
        RoundTripAtLimit(limiter);
        var rounds = 0;
        for (var previous = limiter.Limit; limiter.Limit < 8; rounds++)
        {
            var next = RoundTripAtLimit(limiter);
            Assert.InRange(next - previous, next < 8 ? 0.5 : 0.01, 1.0 + 1e-9);
            previous = next;
        }

        Assert.InRange(rounds, 4, 6);
        Assert.Equal(8, RoundTripAtLimit(limiter));
    }

    [Fact]
    public void Record_SuccessesWithSlotsToSpare_LeaveTheLimitAlone()
    {
        var limiter = new ConcurrencyLimiter(8, clock);
        Overload(limiter, ahead: 4);
        Assert.Equal(4, limiter.Limit);

        // One request at a time while four are allowed (a quiet app): nothing learned about a larger limit.
        for (var i = 0; i < 20; i++)
        {
            RoundTrip1(limiter, SendFeedback.Success);
        }

        Assert.Equal(4, limiter.Limit);
    }

    [Fact]
    public void Record_OverloadWithFiveInFlight_DropsToTheFourAheadOfIt()
    {
        var limiter = new ConcurrencyLimiter(8, clock);
        Assert.Equal(8, limiter.Limit);

        // A gateway lets four through: of eight sent at once, four come back 429, the fifth one with four ahead of it.
        // (Eight lanes hold slots; the requests on the wire are what the gateway counts.)
        var slots = Enumerable.Range(0, 8).Select(_ => Acquire(limiter)).ToList();
        var starts = slots.Select((_, i) => new SendStart(clock.GetTimestamp(), 8, i + 1, 8)).ToList();
        clock.Advance(RoundTrip);
        for (var i = 0; i < 8; i++)
        {
            limiter.Record(starts[i], i < 4 ? SendFeedback.Success : SendFeedback.Overload);
        }

        slots.ForEach(s => s.Dispose());

        Assert.Equal(4, limiter.Limit);
    }

    [Fact]
    public void Record_SeveralOverloadsOfOneRoundTrip_DecreaseOnce()
    {
        var limiter = new ConcurrencyLimiter(8, clock);

        var starts = Enumerable.Range(0, 8).Select(_ => new SendStart(clock.GetTimestamp(), 8, 8, 8)).ToList();
        clock.Advance(RoundTrip);
        starts.ForEach(s => limiter.Record(s, SendFeedback.Overload));

        // Down to the seven ahead of the refused one (a tenth less would be 7.2).
        Assert.Equal(7, limiter.Limit, 3);

        // The next round trip's overload counts again.
        var next = new SendStart(clock.GetTimestamp(), 7, 7, 7);
        clock.Advance(RoundTrip);
        limiter.Record(next, SendFeedback.Overload);
        Assert.Equal(6, limiter.Limit, 3);
    }

    [Fact]
    public void Record_AfterARefusalAtFive_ProbesFiveAgainOnlyAfterEightQuietRoundTrips()
    {
        var limiter = RefusedAtFive();
        Assert.Equal(4, limiter.Limit);

        for (var round = 1; round < ConcurrencyLimiter.ProbeRounds; round++)
        {
            RoundTripAtLimit(limiter);
            Assert.Equal(4, (int)limiter.Limit);
        }

        RoundTripAtLimit(limiter);
        Assert.Equal(5, (int)limiter.Limit);
    }

    [Fact]
    public void Record_ProbeAboveTheRefusedLevelSucceeds_GrowsOneARoundTripAgain()
    {
        var limiter = RefusedAtFive();
        for (var round = 0; round < ConcurrencyLimiter.ProbeRounds; round++)
        {
            RoundTripAtLimit(limiter);
        }

        Assert.Equal(5, (int)limiter.Limit);

        // The gateway was lifted: five at once go through, and growth is one per round trip from then on.
        RoundTripAtLimit(limiter);
        RoundTripAtLimit(limiter);
        Assert.True(limiter.Limit >= 6, $"limit {limiter.Limit}");
    }

    [Fact]
    public void Record_FiveLanesButFourRequestsOnTheWire_DoNotTakeTheCeilingForLifted()
    {
        var limiter = RefusedAtFive();
        for (var round = 0; round < ConcurrencyLimiter.ProbeRounds; round++)
        {
            RoundTripAtLimit(limiter);
        }

        Assert.Equal(5, (int)limiter.Limit);

        // Five lanes hold slots, but one of them is claiming: four requests on the wire, as the gateway allows.
        for (var i = 0; i < 10; i++)
        {
            var start = new SendStart(clock.GetTimestamp(), 5, 4, 5);
            clock.Advance(RoundTrip);
            limiter.Record(start, SendFeedback.Success);
        }

        Assert.Equal(5, (int)limiter.Limit);
    }

    [Fact]
    public void Record_OneFastAnswerThenSlowerOnesForGood_ClimbsBackToTheMaximum()
    {
        var limiter = new ConcurrencyLimiter(8, clock);

        // A warm loopback answers in 20 ms once; every later answer takes 100 ms (a real route). They read as a queue
        // building up until the fastest ages: the limit drops, then climbs back.
        RoundTrip1(limiter, SendFeedback.Success, TimeSpan.FromMilliseconds(20));
        var lowest = limiter.Limit;
        for (var round = 0; round < 100; round++)
        {
            lowest = Math.Min(lowest, RoundTripAtLimit(limiter));
        }

        Assert.True(lowest < 8, $"lowest {lowest}");
        Assert.Equal(8, limiter.Limit);
    }

    [Fact]
    public void RecordClaim_ClaimsGrowingTenfold_LowerTheLimitOnceARoundTrip()
    {
        var limiter = new ConcurrencyLimiter(8, clock);
        for (var i = 0; i < 5; i++)
        {
            Claim(limiter, TimeSpan.FromMilliseconds(5));
        }

        Assert.Equal(8, limiter.Limit);

        // Several dispatchers' lanes now contend in the database: each claim takes 50 ms.
        for (var i = 0; i < 10 && limiter.Limit == 8; i++)
        {
            Claim(limiter, TimeSpan.FromMilliseconds(50));
        }

        Assert.Equal(7.2, limiter.Limit, 3);
    }

    [Fact]
    public void RecordClaim_SlowFirstClaimsAtTheStart_LeaveTheLimitAlone()
    {
        var limiter = new ConcurrencyLimiter(8, clock);

        // The first claims of a process pay for JIT.
        Claim(limiter, TimeSpan.FromMilliseconds(300));
        for (var i = 0; i < 5; i++)
        {
            Claim(limiter, TimeSpan.FromMilliseconds(5));
        }

        Assert.Equal(8, RoundTripAtLimit(limiter));
    }

    [Fact]
    public void NetworkIsTheWait_RoundTripsAgainstClaims_SaysWhetherMoreLanesHelp()
    {
        var limiter = new ConcurrencyLimiter(8, clock);
        Assert.True(limiter.NetworkIsTheWait);

        // 100 ms round trips, 5 ms claims and acknowledgements: lanes hide the network.
        Claim(limiter, TimeSpan.FromMilliseconds(5));
        RoundTrip1(limiter, SendFeedback.Success);
        Acknowledge(limiter, TimeSpan.FromMilliseconds(5));
        Assert.True(limiter.NetworkIsTheWait);

        // A loopback: 1 ms round trips, 5 ms claims: the database is the wait.
        var loopback = new ConcurrencyLimiter(8, clock);
        Claim(loopback, TimeSpan.FromMilliseconds(5));
        RoundTrip1(loopback, SendFeedback.Success, TimeSpan.FromMilliseconds(1));
        Acknowledge(loopback, TimeSpan.FromMilliseconds(1));
        Assert.False(loopback.NetworkIsTheWait);
    }

    [Fact]
    public void NetworkIsTheWait_AcknowledgementsLongerThanRoundTrips_False()
    {
        // A loopback with a cheap claim (SQLite reads it): 1 ms round trips, 0.5 ms claims, but 3 ms acknowledgements
        // waiting for the one writer. The database is still the wait.
        var limiter = new ConcurrencyLimiter(8, clock);
        Claim(limiter, TimeSpan.FromMilliseconds(0.5));
        RoundTrip1(limiter, SendFeedback.Success, TimeSpan.FromMilliseconds(10));
        Acknowledge(limiter, TimeSpan.FromMilliseconds(0.5));
        Assert.True(limiter.NetworkIsTheWait);

        var loopback = new ConcurrencyLimiter(8, clock);
        Claim(loopback, TimeSpan.FromMilliseconds(0.5));
        RoundTrip1(loopback, SendFeedback.Success, TimeSpan.FromMilliseconds(1));
        Acknowledge(loopback, TimeSpan.FromMilliseconds(3));
        Assert.False(loopback.NetworkIsTheWait);
    }

    [Fact]
    public void Record_OneSlowAnswer_LeavesTheLimitAlone()
    {
        var limiter = new ConcurrencyLimiter(8, clock);

        // Round trips of 100 ms at the limit: the normal.
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(8, RoundTripAtLimit(limiter));
        }

        // A busy machine answers one request late: the average of recent round trips barely moves.
        var start = new SendStart(clock.GetTimestamp(), 8, 8, 8);
        clock.Advance(RoundTrip * 4);
        limiter.Record(start, SendFeedback.Success);

        Assert.Equal(8, limiter.Limit);
    }

    [Fact]
    public void Record_SlowFirstAnswerThenNormalOnes_LeaveTheLimitAlone()
    {
        var limiter = new ConcurrencyLimiter(8, clock);

        // A host's first request opens the connection (TLS handshake, JIT): 600 ms; the next ones take 100 ms.
        Assert.Equal(8, RoundTripAtLimit(limiter, TimeSpan.FromMilliseconds(600)));
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(8, RoundTripAtLimit(limiter));
        }
    }

    [Fact]
    public void Record_RoundTripsGrowingToThreeTimesTheFastest_DropTheLimitByATenth()
    {
        var limiter = new ConcurrencyLimiter(8, clock);

        // Round trips of 100 ms at the limit: the normal.
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(8, RoundTripAtLimit(limiter));
        }
        Assert.Equal(8, limiter.Limit);

        // A queue builds up: answers keep taking three times as long as the fastest.
        for (var i = 0; i < 10 && limiter.Limit == 8; i++)
        {
            var start = new SendStart(clock.GetTimestamp(), 8, 8, 8);
            clock.Advance(RoundTrip * 3);
            limiter.Record(start, SendFeedback.Success);
        }

        Assert.Equal(7.2, limiter.Limit, 3);
    }

    [Fact]
    public void Record_NeutralAnswers_ChangeNothing()
    {
        var limiter = new ConcurrencyLimiter(8, clock);
        Overload(limiter, ahead: 2);
        for (var i = 0; i < 3; i++)
        {
            var starts = new[] { limiter.StartSend(), limiter.StartSend() };
            clock.Advance(RoundTrip);
            Array.ForEach(starts, s => limiter.Record(s, SendFeedback.Neutral));
        }

        Assert.Equal(2, limiter.Limit);
    }

    [Fact]
    public async Task AcquireAsync_AllSlotsHeld_WaitsUntilOneIsFreed()
    {
        var limiter = new ConcurrencyLimiter(1, clock);
        var held = await limiter.AcquireAsync(CancellationToken.None);

        var waiting = limiter.AcquireAsync(CancellationToken.None).AsTask();
        Assert.False(waiting.IsCompleted);
        Assert.Equal(1, limiter.InFlight);

        held.Dispose();
        (await waiting.WaitAsync(TimeSpan.FromSeconds(10))).Dispose();
        Assert.Equal(0, limiter.InFlight);
    }

    [Fact]
    public void OverLimit_LimitDropsBelowTheSlotsHeld_IsTrueUntilOneIsFreed()
    {
        var limiter = new ConcurrencyLimiter(8, clock);
        Overload(limiter, ahead: 2);
        var slots = new[] { Acquire(limiter), Acquire(limiter) };
        Assert.False(limiter.OverLimit);

        var start = new SendStart(clock.GetTimestamp(), 2, 2, 2);
        clock.Advance(RoundTrip);
        limiter.Record(start, SendFeedback.Overload);

        Assert.True(limiter.OverLimit);
        slots[0].Dispose();
        Assert.False(limiter.OverLimit);
        slots[1].Dispose();
    }

    private ConcurrencyLimiter RefusedAtFive()
    {
        var limiter = new ConcurrencyLimiter(8, clock);
        Assert.Equal(8, limiter.Limit);

        // A refusal at five: four went through, the fifth was refused.
        var slots = Enumerable.Range(0, 5).Select(_ => Acquire(limiter)).ToList();
        var starts = Enumerable.Range(1, 5).Select(n => new SendStart(clock.GetTimestamp(), 5, n, 8)).ToList();
        clock.Advance(RoundTrip);
        limiter.Record(starts[4], SendFeedback.Overload);
        slots.ForEach(s => s.Dispose());
        return limiter;
    }

    // One round trip of which the request with `ahead` others in flight before it was refused (429): the limit drops to `ahead`.
    private void Overload(ConcurrencyLimiter limiter, int ahead)
    {
        var start = new SendStart(clock.GetTimestamp(), (int)limiter.Limit, ahead + 1, (int)limiter.Limit);
        clock.Advance(RoundTrip);
        limiter.Record(start, SendFeedback.Overload);
        clock.Advance(TimeSpan.FromTicks(1));
    }

    // Fills every slot the limit allows, then answers each with success after one round trip; returns the new limit.
    private double RoundTripAtLimit(ConcurrencyLimiter limiter, TimeSpan? roundTrip = null)
    {
        var allowed = (int)limiter.Limit;
        var slots = Enumerable.Range(0, allowed).Select(_ => Acquire(limiter)).ToList();
        var starts = slots.Select(_ => limiter.StartSend()).ToList();
        clock.Advance(roundTrip ?? RoundTrip);
        starts.ForEach(s => limiter.Record(s, SendFeedback.Success));
        slots.ForEach(s => s.Dispose());
        return limiter.Limit;
    }

    private void RoundTrip1(ConcurrencyLimiter limiter, SendFeedback feedback, TimeSpan? roundTrip = null)
    {
        using var slot = Acquire(limiter);
        var start = limiter.StartSend();
        clock.Advance(roundTrip ?? RoundTrip);
        limiter.Record(start, feedback);
    }

    private void Claim(ConcurrencyLimiter limiter, TimeSpan duration)
    {
        var started = clock.GetTimestamp();
        clock.Advance(duration);
        limiter.RecordClaim(started);
    }

    private void Acknowledge(ConcurrencyLimiter limiter, TimeSpan duration)
    {
        var started = clock.GetTimestamp();
        clock.Advance(duration);
        limiter.RecordAcknowledgement(started);
    }

    private static ConcurrencyLimiter.Slot Acquire(ConcurrencyLimiter limiter)
    {
        var pending = limiter.AcquireAsync(CancellationToken.None);
        Assert.True(pending.IsCompletedSuccessfully, "no free slot");
        return pending.Result;
    }
}
