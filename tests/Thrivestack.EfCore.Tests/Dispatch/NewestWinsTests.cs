using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>README "Delivery guarantees": several pending full-trait events of one user are sent as one, the newest.</summary>
public sealed class NewestWinsTests : IAsyncLifetime
{
    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_SeveralPendingVersionsOfOneUser_SendsOnlyTheNewestAndSettlesEveryRow()
    {
        var id = Guid.NewGuid();
        var other = Guid.NewGuid();
        await using (var context = harness.Database.CreateContext())
        {
            var user = new AppUser { Id = id, Email = "v1@example.com", Age = 1 };
            context.Users.Add(user);
            context.Users.Add(new AppUser { Id = other, Email = "other@example.com", Age = 40 });
            await context.SaveChangesAsync();

            context.TeamMembers.Add(new TeamMember { UserId = id, TeamId = "team-a", Role = "owner" });
            await context.SaveChangesAsync();

            user.Email = "v2@example.com";
            user.Age = 2;
            await context.SaveChangesAsync();

            user.Email = "v3@example.com";
            user.Age = 3;
            await context.SaveChangesAsync();
        }

        Assert.Equal(5, (await harness.RowsAsync()).Count);
        await harness.StartHostAsync();
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);

        // The membership event is not a full-trait event: it is sent as written. Of the three trait versions only
        // the newest travels; the older two are settled with its acknowledgement.
        var events = harness.StandIn.EventsFor(id.ToString());
        Assert.Equal(2, events.Count);
        Assert.Equal("team-a", events[0].GroupId);
        Assert.Null(events[1].GroupId);
        Assert.Equal("v3@example.com", events[1].Traits!.Value.GetProperty("email").GetString());
        Assert.Equal(3, events[1].Traits!.Value.GetProperty("age").GetInt32());
        Assert.Single(harness.StandIn.EventsFor(other.ToString()));
        Assert.Equal(3, harness.StandIn.AcceptedEventCount);
    }

    [Fact]
    public async Task Dispatcher_HandWrittenEventsOfOneUser_AreNotCoalesced()
    {
        await harness.EnqueueAsync(
        [
            ("manual-user", new Dictionary<string, object?> { ["plan"] = "free" }),
            ("manual-user", new Dictionary<string, object?> { ["seats"] = 3 }),
        ]);

        await harness.StartHostAsync();
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);

        var events = harness.StandIn.EventsFor("manual-user");
        Assert.Equal(2, events.Count);
        Assert.Equal("free", events[0].Traits!.Value.GetProperty("plan").GetString());
        Assert.Equal(3, events[1].Traits!.Value.GetProperty("seats").GetInt32());
    }
}
