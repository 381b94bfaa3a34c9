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

        Assert.Equal(EpisodeStart.FirstRecurrence, log.Begin(now += TimeSpan.FromMinutes(4)));
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
        Assert.Equal(EpisodeStart.FirstRecurrence, log.Begin(now += Window - TimeSpan.FromTicks(1)));
    }

    [Fact]
    public void LevelOf_OnlyANewHold_KeepsItsLevel()
    {
        Assert.Equal(LogLevel.Error, EpisodeLog.LevelOf(EpisodeStart.New, LogLevel.Error));
        Assert.Equal(LogLevel.Debug, EpisodeLog.LevelOf(EpisodeStart.FirstRecurrence, LogLevel.Error));
        Assert.Equal(LogLevel.Debug, EpisodeLog.LevelOf(EpisodeStart.Quiet, LogLevel.Warning));
    }
}
