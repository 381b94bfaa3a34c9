using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// SQLite: one dispatcher per outbox holds its lease and ships every event; another beside it (a second instance on the
/// same file) stands by, and takes over as soon as the first stops, without waiting for the lease to end.
/// </summary>
public sealed class OutboxLeaseTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatchers_TwoOnOneFile_OneShipsEveryEventOnceAndTheOtherTakesOverWhenItStops()
    {
        // A lease far longer than the test: only the first dispatcher giving it back lets the second ship in time.
        static void Configure(ThrivestackOptions o)
        {
            o.LeaseDuration = TimeSpan.FromMinutes(10);
            o.PollInterval = TimeSpan.FromMilliseconds(50);
        }

        await harness.EnqueueAsync(Enumerable.Range(0, 50).Select(i => ($"a{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var first = await harness.StartHostAsync(Configure);
        await harness.StandIn.WaitForEventsAsync(50, Deadline);

        var second = await harness.StartHostAsync(Configure);
        await harness.Logs.WaitForAsync(l => l.Is(38), Deadline);
        await harness.EnqueueAsync(Enumerable.Range(0, 50).Select(i => ($"b{i}", (IReadOnlyDictionary<string, object?>?)null)));
        await harness.StandIn.WaitForEventsAsync(100, Deadline);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(39));

        await first.StopAsync();
        await harness.EnqueueAsync(Enumerable.Range(0, 50).Select(i => ($"c{i}", (IReadOnlyDictionary<string, object?>?)null)));
        await harness.StandIn.WaitForEventsAsync(150, Deadline);
        await harness.Logs.WaitForAsync(l => l.Is(39), Deadline);

        Assert.Equal(150, harness.StandIn.AcceptedEventCount);
        Assert.Equal(150, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        await second.StopAsync();
    }
}
