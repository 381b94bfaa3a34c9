using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Tests.Backfill;

/// <summary>The dispatcher's coalescing rule for backfill rows: live beats backfill whatever the ids.</summary>
public sealed class BackfillCoalescingTests
{
    [Fact]
    public void Coalesce_LiveRowWithSmallerIdThanBackfillRow_SendsLiveAndSettlesBackfill()
    {
        var events = OutboxEvent.Coalesce([Row(10, "u1", OutboxEventKind.UserTraits), Row(20, "u1", OutboxEventKind.Backfill)]);

        var sent = Assert.Single(events);
        Assert.Equal(10, sent.Row.Id);
        Assert.Equal([10L, 20L], sent.Ids.Order());
    }

    [Fact]
    public void Coalesce_LiveRowWithLargerIdThanBackfillRow_SendsLiveAndSettlesBackfill()
    {
        var events = OutboxEvent.Coalesce([Row(10, "u1", OutboxEventKind.Backfill), Row(20, "u1", OutboxEventKind.UserTraits)]);

        var sent = Assert.Single(events);
        Assert.Equal(20, sent.Row.Id);
        Assert.Equal([10L, 20L], sent.Ids.Order());
    }

    [Fact]
    public void Coalesce_BackfillRowAlone_IsSentLikeUserTraits()
    {
        var events = OutboxEvent.Coalesce([Row(5, "u1", OutboxEventKind.Backfill), Row(6, "u2", OutboxEventKind.UserTraits), Row(7, "u1", OutboxEventKind.Backfill)]);

        Assert.Equal([6L, 7L], events.Select(e => e.Row.Id));
        Assert.Equal([5L, 7L], events.Single(e => e.Row.UserId == "u1").Ids.Order());
    }

    [Fact]
    public void Coalesce_SeveralLiveRowsAndBackfill_NewestLiveWinsAndMembershipsStay()
    {
        var events = OutboxEvent.Coalesce(
        [
            Row(1, "u1", OutboxEventKind.UserTraits),
            Row(2, "u1", OutboxEventKind.Membership, "g1"),
            Row(3, "u1", OutboxEventKind.UserTraits),
            Row(4, "u1", OutboxEventKind.Backfill),
        ]);

        Assert.Equal([2L, 3L], events.Select(e => e.Row.Id));
        Assert.Equal([1L, 3L, 4L], events[1].Ids.Order());
    }

    private static ClaimedRow Row(long id, string userId, OutboxEventKind kind, string? groupId = null) =>
        new() { Id = id, UserId = userId, Kind = (int)kind, GroupId = groupId, Payload = $"{{\"user_id\":\"{userId}\"}}" };
}
