using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Testing;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>What the logs may hold: ids and counts. Never the token, never a trait value. Logged at Trace, so HttpClient's own lines are checked too.</summary>
public sealed class DispatcherLoggingTests
{
    private const string Token = "tok-9f2c41d7e0b3-do-not-log";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(StandInAuthHeader.Bearer, ThrivestackAuthHeader.Bearer)]
    [InlineData(StandInAuthHeader.ApiKey, ThrivestackAuthHeader.ApiKey)]
    public async Task Logs_RefusedAndAcceptedToken_NeverContainTheToken(StandInAuthHeader standInHeader, ThrivestackAuthHeader header)
    {
        await using var harness = await StartAsync(standInHeader);
        harness.StandIn.Faults.Unauthorized = true;
        await harness.EnqueueAsync([("secret-1", null)]);

        await harness.StartHostAsync(o =>
        {
            o.AuthHeader = header;
            o.ApiToken = Token;
        });

        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(7)), Deadline);
        harness.StandIn.Faults.Unauthorized = false;
        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(8)), Deadline);

        AssertNoLineContains(harness, Token);
    }

    [Fact]
    public async Task Logs_TokenProviderFailsWithTheTokenInItsMessage_NeverContainTheToken()
    {
        await using var harness = await StartAsync(StandInAuthHeader.Bearer);
        var calls = 0;
        await harness.EnqueueAsync([("secret-2", null)]);

        await harness.StartHostAsync(o =>
        {
            o.ApiToken = null;
            // The first probe asks twice (the second ask is the refresh after a refusal); both fail, so sending pauses.
            o.TokenProvider = _ => Interlocked.Increment(ref calls) <= 2
                ? throw new InvalidOperationException($"refresh failed for {Token}")
                : ValueTask.FromResult(Token);
        });

        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(8)), Deadline);

        var paused = Assert.Single(harness.Logs.Lines, l => l.Is(7));
        Assert.Contains("InvalidOperationException", paused.Message);
        AssertNoLineContains(harness, Token);
    }

    [Fact]
    public async Task Logs_DeliveryRetryDeadLetterAndWarnings_NameIdsAndCountsButNoTraitValue()
    {
        await using var harness = await StartAsync(StandInAuthHeader.Bearer);
        var rejected = Guid.NewGuid();
        harness.StandIn.Faults.FailNextRequests = 1;
        harness.StandIn.Faults.RejectedUserIds.Add(rejected.ToString());
        harness.StandIn.Faults.EventIdResponse = true;
        harness.StandIn.Faults.Warnings.Add("trait ignored");
        var host = await harness.StartHostAsync(o => o.MaxRequestRetries = 0);

        await using (var scope = host.Services.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
            context.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "ada.lovelace.7f3c@example.org", FirstName = "Augusta", LastName = "Byron-King", Phones = ["+44 20 7946 0321"] });
            context.Users.Add(new AppUser { Id = rejected, Email = "charles.babbage.91d@example.org", FirstName = "Charles", Address = new Address { City = "Marylebone-Xq" } });
            await context.SaveChangesAsync();
        }

        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 1 && rows[0].State == OutboxRowState.DeadLettered);
        var dead = Assert.Single(await harness.RowsAsync());

        // The row is dead-lettered in the database a moment before its log line is written.
        await harness.Logs.WaitForAsync(l => l.Is(6), Deadline);

        foreach (var value in new[] { "ada.lovelace.7f3c@example.org", "charles.babbage.91d@example.org", "Augusta", "Byron-King", "+44 20 7946 0321", "Marylebone-Xq" })
        {
            AssertNoLineContains(harness, value);
        }

        // The dead-letter line is written just after the row's update that the wait above saw.
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(6)), Deadline);
        var lines = harness.Logs.Lines;
        Assert.Contains(lines, l => l.Is(33) && l.Message.Contains("batch of 2 events"));
        Assert.Contains(lines, l => l.Is(3) && l.Message.Contains("Delivered identify events: 1 "));
        Assert.Contains(lines, l => l.Is(4) && l.Message.Contains("trait ignored"));
        var deadLettered = Assert.Single(lines, l => l.Is(6));
        Assert.Contains($"event {dead.Id} of user {rejected}", deadLettered.Message);
    }

    private static async Task<DispatchHarness> StartAsync(StandInAuthHeader header)
    {
        var harness = await DispatchHarness.StartAsync(standInOptions: new ThrivestackStandInOptions { ApiToken = Token, AuthHeader = header });
        harness.MinimumLevel = LogLevel.Trace;
        return harness;
    }

    private static void AssertNoLineContains(DispatchHarness harness, string value)
    {
        var lines = harness.Logs.Lines;
        Assert.NotEmpty(lines);
        Assert.All(lines, l =>
        {
            Assert.DoesNotContain(value, l.Message);
            Assert.DoesNotContain(value, l.Exception?.ToString() ?? "");
        });
    }
}
