using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Dispatch;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>
/// A backfill's chunks on SQLite let the app's saves in progress go first: <see cref="OutboxSignal.AppSavesEndedAsync"/>
/// completes when no save is in progress, or after <see cref="OutboxSignal.SaveYield"/> on the given clock, and never faults.
/// The fake clock never moves unless a test advances it, so a wait that completes was ended by the saves.
/// </summary>
public sealed class OutboxSignalSaveYieldTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private readonly OutboxSignal signal = new();
    private readonly FakeTimeProvider clock = new();

    [Fact]
    public void AppSavesEndedAsync_NoSaveInProgress_CompletesSynchronously()
    {
        var wait = signal.AppSavesEndedAsync(clock);

        Assert.True(wait.IsCompletedSuccessfully);
        Assert.False(signal.HasYieldWaiter);
    }

    [Fact]
    public async Task AppSavesEndedAsync_SaveInProgress_CompletesWhenItEnds()
    {
        signal.SaveStarted();

        var wait = signal.AppSavesEndedAsync(clock);

        Assert.False(wait.IsCompleted);
        Assert.True(signal.HasYieldWaiter);
        signal.SaveEnded();
        await wait.WaitAsync(Deadline);
        Assert.Equal(0, signal.SavesInProgress);
        Assert.False(signal.HasYieldWaiter);
    }

    [Fact]
    public async Task AppSavesEndedAsync_TwoSavesInProgress_CompletesOnlyWhenBothEnded()
    {
        signal.SaveStarted();
        signal.SaveStarted();
        var wait = signal.AppSavesEndedAsync(clock);

        signal.SaveEnded();

        // The waiter is still there (not woken and removed) after the first end.
        Assert.True(signal.HasYieldWaiter);
        Assert.False(wait.IsCompleted);
        Assert.Equal(1, signal.SavesInProgress);
        signal.SaveEnded();
        await wait.WaitAsync(Deadline);
    }

    [Fact]
    public async Task AppSavesEndedAsync_SaveThatNeverEnds_CompletesAfterSaveYieldWithoutFaulting()
    {
        Assert.Equal(OutboxSignal.DefaultSaveYield, signal.SaveYield);
        signal.SaveStarted();
        var wait = signal.AppSavesEndedAsync(clock);

        clock.Advance(signal.SaveYield - TimeSpan.FromTicks(1));
        Assert.False(wait.IsCompleted);
        clock.Advance(TimeSpan.FromTicks(1));

        await wait.WaitAsync(Deadline);
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.Equal(1, signal.SavesInProgress);
    }

    [Fact]
    public async Task AppSavesEndedAsync_SaveYieldSetLonger_WaitsThatLong()
    {
        signal.SaveYield = TimeSpan.FromMinutes(1);
        signal.SaveStarted();
        var wait = signal.AppSavesEndedAsync(clock);

        clock.Advance(TimeSpan.FromMinutes(1) - TimeSpan.FromTicks(1));
        Assert.False(wait.IsCompleted);
        clock.Advance(TimeSpan.FromTicks(1));

        await wait.WaitAsync(Deadline);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AppSavesEndedAsync_AfterAnEarlierWaitEnded_WaitsForTheNextSaveAfresh(bool earlierTimedOut)
    {
        signal.SaveStarted();
        var first = signal.AppSavesEndedAsync(clock);
        if (earlierTimedOut)
        {
            clock.Advance(signal.SaveYield);
            await first.WaitAsync(Deadline);
        }

        signal.SaveEnded();
        await first.WaitAsync(Deadline);

        signal.SaveStarted();
        var second = signal.AppSavesEndedAsync(clock);

        Assert.False(second.IsCompleted);
        Assert.True(signal.HasYieldWaiter);
        signal.SaveEnded();
        await second.WaitAsync(Deadline);
    }

    [Fact]
    public async Task AppSavesEndedAsync_LastSavesEndingOnOtherThreadsAsItStarts_AlwaysCompletes()
    {
        // Each round, threads end the saves in progress (starting and ending one more each meanwhile) at the moment a wait
        // starts. A wait that misses the last end stays pending: the fake clock never moves, so it would meet the deadline.
        const int enders = 3, rounds = 20_000;
        using var start = new Barrier(enders + 1);
        using var done = new Barrier(enders + 1);
        void EndEachRound()
        {
            for (var round = 0; round < rounds && start.SignalAndWait(Deadline); round++)
            {
                signal.SaveStarted();
                signal.SaveEnded();
                signal.SaveEnded();
                done.SignalAndWait(Deadline);
            }
        }

        for (var i = 0; i < enders; i++)
        {
            new Thread(EndEachRound) { IsBackground = true }.Start();
        }

        for (var round = 0; round < rounds; round++)
        {
            for (var i = 0; i < enders; i++)
            {
                signal.SaveStarted();
            }

            start.SignalAndWait(Deadline);
            var wait = signal.AppSavesEndedAsync(clock);
            done.SignalAndWait(Deadline);
            await wait.WaitAsync(Deadline);
        }

        Assert.Equal(0, signal.SavesInProgress);
        Assert.True(signal.AppSavesEndedAsync(clock).IsCompletedSuccessfully);
    }
}
