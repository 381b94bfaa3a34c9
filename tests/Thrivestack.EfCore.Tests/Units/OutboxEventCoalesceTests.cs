using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>Newest wins per user: full-trait events of one user in a claim become one; others are sent as written.</summary>
public sealed class OutboxEventCoalesceTests
{
    [Fact]
    public void Coalesce_SeveralTraitEventsOfOneUser_KeepsTheNewestCarryingTheOlderIds()
    {
        var events = OutboxEvent.Coalesce([Traits(1, "u"), Traits(2, "u"), Traits(3, "u")]);

        var only = Assert.Single(events);
        Assert.Equal(3, only.Row.Id);
        Assert.Equal([1L, 2L], only.Superseded!.Order());
        Assert.Equal([1L, 2L, 3L], only.Ids.Order());
    }

    [Fact]
    public void Coalesce_InterleavedUsers_KeepsEachNewestInClaimOrder()
    {
        var events = OutboxEvent.Coalesce([Traits(1, "a"), Traits(2, "b"), Traits(3, "a"), Traits(4, "c")]);

        Assert.Equal([2L, 3L, 4L], events.Select(e => e.Row.Id));
        Assert.Null(events[0].Superseded);
        Assert.Equal([1L], events[1].Superseded!);
    }

    [Fact]
    public void Coalesce_MembershipAndHandWrittenEvents_AreNeverMerged()
    {
        var rows = new List<ClaimedRow>
        {
            Traits(1, "u"),
            Row(2, "u", OutboxEventKind.Membership, "g1"),
            Row(3, "u", OutboxEventKind.Manual),
            Row(4, "u", OutboxEventKind.Manual),
            Row(5, "u", OutboxEventKind.Membership, "g2"),
            Traits(6, "u"),
        };

        var events = OutboxEvent.Coalesce(rows);

        Assert.Equal([2L, 3L, 4L, 5L, 6L], events.Select(e => e.Row.Id));
        Assert.Equal([1L], events[^1].Superseded!);
        Assert.All(events.Take(4), e => Assert.Null(e.Superseded));
    }

    [Fact]
    public void Coalesce_TraitKindRowWithAGroup_IsNotMerged()
    {
        var events = OutboxEvent.Coalesce([Traits(1, "u"), Row(2, "u", OutboxEventKind.UserTraits, "g"), Traits(3, "u")]);

        Assert.Equal([2L, 3L], events.Select(e => e.Row.Id));
        Assert.Equal([1L], events[1].Superseded!);
    }

    [Fact]
    public void Coalesce_OneEventPerUser_ChangesNothing()
    {
        var rows = new List<ClaimedRow> { Traits(1, "a"), Traits(2, "b") };

        var events = OutboxEvent.Coalesce(rows);

        Assert.Equal([1L, 2L], events.Select(e => e.Row.Id));
        Assert.All(events, e => Assert.Null(e.Superseded));
        Assert.Equal([1L], events[0].Ids);
    }

    [Fact]
    public void Coalesce_NoRows_NoEvents() => Assert.Empty(OutboxEvent.Coalesce([]));

    [Fact]
    public void Bytes_Payload_IsItsUtf8Size()
    {
        var row = Traits(1, "u");
        row.Payload = "{\"n\":\"Zoë\"}";

        Assert.Equal(12, new OutboxEvent(row).Bytes);
    }

    private static ClaimedRow Traits(long id, string user) => Row(id, user, OutboxEventKind.UserTraits);

    private static ClaimedRow Row(long id, string user, OutboxEventKind kind, string? group = null) =>
        new() { Id = id, UserId = user, GroupId = group, Kind = (int)kind, Payload = $"{{\"user_id\":\"{user}\",\"v\":{id}}}" };
}
