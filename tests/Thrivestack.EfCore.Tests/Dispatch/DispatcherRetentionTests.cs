using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// Retention on a fake clock. Every step saves a user through the host, so the commit's nudge starts a cycle at the
/// clock's current time; a cycle runs the cleanup before it claims, so once that user is delivered the cleanup has run.
/// </summary>
public sealed class DispatcherRetentionTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Retention = TimeSpan.FromHours(1);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_DeliveredRetention_KeepsDeliveredRowsUntilTheRetentionEnds()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var start = clock.GetUtcNow().UtcDateTime;
        var host = await harness.StartHostAsync(o => o.DeliveredRetention = Retention, clock);

        await DispatchHarness.SaveUsersAsync(host, 3, "early");
        await harness.WaitForOutboxAsync(rows => rows.Count == 3 && rows.All(r => r.State == OutboxRowState.Delivered));
        Assert.All(await harness.RowsAsync(), r =>
        {
            Assert.Equal(start, r.DeliveredAt);
            Assert.Null(r.LeaseId);
        });

        // Half the retention later: a cleanup runs, but the early rows are not old enough.
        clock.Advance(Retention / 2);
        await DispatchHarness.SaveUsersAsync(host, 1, "middle");
        await harness.StandIn.WaitForEventsAsync(4, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 4 && rows.All(r => r.State == OutboxRowState.Delivered));
        Assert.Equal(3, (await harness.RowsAsync()).Count(r => r.DeliveredAt == start));
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(11));

        // A full retention after the early rows were delivered (but not after the middle one): only they go.
        clock.Advance(Retention);
        await DispatchHarness.SaveUsersAsync(host, 1, "late");
        await harness.StandIn.WaitForEventsAsync(5, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 2 && rows.All(r => r.State == OutboxRowState.Delivered));
        Assert.Equal([start + (Retention / 2), start + (Retention * 1.5)], (await harness.RowsAsync()).Select(r => r.DeliveredAt!.Value));
        var cleaned = Assert.Single(harness.Logs.Lines, l => l.Is(11));
        Assert.Contains("Cleaned up 3 delivered", cleaned.Message);
    }

    [Fact]
    public async Task Dispatcher_NoRetention_DeletesRowsOnDelivery()
    {
        var host = await harness.StartHostAsync();

        await DispatchHarness.SaveUsersAsync(host, 3);

        await harness.StandIn.WaitForEventsAsync(3, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
    }
}
