using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Dispatch;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>
/// A server that refuses a request now and then while it takes the others logs one warning that holds recur, not a
/// warning and "resumed" every round; a hold after a quiet window is news again.
/// </summary>
public sealed class EpisodeLogTests
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(5);
    private static readonly DateTimeOffset Start = new(2026, 12, 2, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Begin_FirstHold_IsNewAndEndsAtInformation()
    {
        var log = new EpisodeLog(Window);

        Assert.Equal(EpisodeStart.New, log.Begin(Start));
        Assert.Equal(LogLevel.Information, log.End(Start.AddMinutes(1)));
    }

    [Fact]
    public void Begin_HoldsRecurringWithinTheWindow_SayItOnceThenLogAtDebug()
    {
        var log = new EpisodeLog(Window);
        var now = Start;
        log.Begin(now);
        log.End(now += TimeSpan.FromMinutes(1));

        Assert.Equal(EpisodeStart.Announce, log.Begin(now += TimeSpan.FromMinutes(4)));
        Assert.Equal(LogLevel.Debug, log.End(now += TimeSpan.FromMinutes(1)));
        for (var round = 0; round < 50; round++)
        {
            Assert.Equal(EpisodeStart.Quiet, log.Begin(now += TimeSpan.FromSeconds(30)));
            Assert.Equal(LogLevel.Debug, log.End(now += TimeSpan.FromSeconds(30)));
        }
    }

    [Fact]
    public void Begin_AfterAWholeWindowWithoutAHold_IsNewAgain()
    {
        var log = new EpisodeLog(Window);
        var now = Start;
        log.Begin(now);
        log.End(now);
        log.Begin(now += TimeSpan.FromSeconds(10));
        log.End(now);

        Assert.Equal(EpisodeStart.New, log.Begin(now += Window));
        Assert.Equal(LogLevel.Information, log.End(now));
        Assert.Equal(EpisodeStart.Announce, log.Begin(now += Window - TimeSpan.FromTicks(1)));
    }

    [Fact]
    public void Begin_HoldsRecurringForHours_SayItAgainEachHourWithTheirCount()
    {
        var log = new EpisodeLog(Window);
        var now = Start;
        log.Begin(now);
        log.End(now);

        var announced = new List<(TimeSpan At, int Recurrences)>();
        for (var round = 0; round < 150; round++)
        {
            if (log.Begin(now += TimeSpan.FromMinutes(1)) == EpisodeStart.Announce)
            {
                announced.Add((now - Start, log.Recurrences));
            }

            log.End(now);
        }

        // A round a minute for 150 minutes: said at the first recurrence, then once an hour, counting since the first.
        Assert.Equal([(TimeSpan.FromMinutes(1), 1), (TimeSpan.FromMinutes(61), 61), (TimeSpan.FromMinutes(121), 121)], announced);
        Assert.Equal(Start + TimeSpan.FromMinutes(1), log.RecurringSince);
    }

    [Fact]
    public void Persists_RecurringHoldThatLastsAWindow_IsNewsOnceAndTheRunGoesOn()
    {
        var log = new EpisodeLog(Window);
        Assert.False(log.Persists(Start.AddHours(1)));
        log.Begin(Start);
        Assert.False(log.Persists(Start.AddHours(1)));
        log.End(Start);

        // A recurrence that steps again within the window is still a refusal now and then; one that lasts a window is not.
        var began = Start.AddMinutes(1);
        Assert.Equal(EpisodeStart.Announce, log.Begin(began));
        Assert.False(log.Persists(began + Window - TimeSpan.FromTicks(1)));
        Assert.True(log.Persists(began + Window));
        Assert.False(log.Persists(began + Window + Window));
        Assert.Equal(LogLevel.Information, log.End(began + Window + Window));

        // The run of recurrences goes on: the next hold soon after is quiet, counted, not announced again.
        Assert.Equal(EpisodeStart.Quiet, log.Begin(began + Window + Window + TimeSpan.FromMinutes(1)));
        Assert.Equal(2, log.Recurrences);
        Assert.Equal(began, log.RecurringSince);
        Assert.Equal(LogLevel.Debug, log.End(began + Window + Window + TimeSpan.FromMinutes(2)));
    }

    [Fact]
    public void LevelOf_OnlyANewHold_KeepsItsLevel()
    {
        Assert.Equal(LogLevel.Error, EpisodeLog.LevelOf(EpisodeStart.New, LogLevel.Error));
        Assert.Equal(LogLevel.Debug, EpisodeLog.LevelOf(EpisodeStart.Announce, LogLevel.Error));
        Assert.Equal(LogLevel.Debug, EpisodeLog.LevelOf(EpisodeStart.Quiet, LogLevel.Warning));
    }

    [Fact]
    public void Louder_TwoEndsAtOnce_TheLouderWinsAndNoneIsNoLine()
    {
        // A pause and an outage's backoff that end together log one "resumed", at Information unless both were recurrences.
        Assert.Equal(LogLevel.Information, EpisodeLog.Louder(LogLevel.Debug, LogLevel.Information));
        Assert.Equal(LogLevel.Information, EpisodeLog.Louder(LogLevel.Information, LogLevel.Debug));
        Assert.Equal(LogLevel.Debug, EpisodeLog.Louder(LogLevel.Debug, LogLevel.None));
        Assert.Equal(LogLevel.Debug, EpisodeLog.Louder(LogLevel.None, LogLevel.Debug));
        Assert.Equal(LogLevel.Debug, EpisodeLog.Louder(LogLevel.Debug, LogLevel.Debug));
    }
}
