using System.Net;
using System.Net.Http.Headers;
using Thrivestack.EfCore.Testing.Tests.Infrastructure;

namespace Thrivestack.EfCore.Testing.Tests;

public sealed partial class ThrivestackStandInTests
{
    [Fact]
    public async Task WaitForEventsAsync_EventsArriveLater_Completes()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        var waiting = standIn.WaitForEventsAsync(3, Patience);
        Assert.False(waiting.IsCompleted);

        using var first = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1, "a-"));
        using var second = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(2, "b-"));
        await waiting;

        Assert.Equal(3, standIn.AcceptedEventCount);
    }

    [Fact]
    public async Task WaitForEventsAsync_AlreadyArrived_CompletesAtOnce()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        using var response = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(2));

        var waiting = standIn.WaitForEventsAsync(2, TimeSpan.Zero);

        Assert.True(waiting.IsCompletedSuccessfully);
        await waiting;
    }

    [Fact]
    public async Task WaitForEventsAsync_TooFewEvents_ThrowsTimeoutSayingWhatArrived()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        using var accepted = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));
        using var unauthorized = StandInHttp.Identify(standIn, IdentifyJson.Users(1));
        unauthorized.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "expired");
        using var rejected = await client.SendAsync(unauthorized);

        var exception = await Assert.ThrowsAsync<TimeoutException>(
            () => standIn.WaitForEventsAsync(5, TimeSpan.FromMilliseconds(100)));

        Assert.Contains("for 5 identify event(s)", exception.Message, StringComparison.Ordinal);
        Assert.Contains("but 1 arrived in 1 accepted request(s)", exception.Message, StringComparison.Ordinal);
        Assert.Contains("2 request(s) answered: 200 x1, 401 x1", exception.Message, StringComparison.Ordinal);
        Assert.Contains("last error: 401 Access token missing or invalid", exception.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("expired", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WaitForEventsAsync_NothingArrived_ThrowsTimeoutSayingSo()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        var exception = await Assert.ThrowsAsync<TimeoutException>(
            () => standIn.WaitForEventsAsync(1, TimeSpan.FromMilliseconds(100)));

        Assert.Contains("no request was answered", exception.Message, StringComparison.Ordinal);
        Assert.Contains(standIn.Endpoint.ToString(), exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WaitUntilAsync_ConditionMetByRejectedRequest_Completes()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        var waiting = standIn.WaitUntilAsync(s => s.Requests.Any(r => r.StatusCode == 400), Patience);
        Assert.False(waiting.IsCompleted);

        using var response = await client.PostIdentifyAsync(standIn, "[]");
        await waiting;

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task WaitUntilAsync_Cancelled_ThrowsOperationCanceled()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        using var cancellation = new CancellationTokenSource();
        var waiting = standIn.WaitUntilAsync(_ => false, Timeout.InfiniteTimeSpan, cancellation.Token);

        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
    }

    [Fact]
    public async Task WaitUntilAsync_ConditionNeverMet_ThrowsTimeout()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        var exception = await Assert.ThrowsAsync<TimeoutException>(
            () => standIn.WaitUntilAsync(_ => false, TimeSpan.FromMilliseconds(100)));

        Assert.StartsWith("The condition was not met within", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reset_AfterTrafficAndFaults_ClearsRecordsCountersAndFaultsButKeepsToken()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.ApiToken = "kept";
        using var before = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(2));
        standIn.Faults.FailNextRequests = 3;
        standIn.Faults.Unauthorized = true;
        standIn.Faults.RejectedUserIds.Add("x");
        standIn.Faults.Warnings.Add("w");

        standIn.Reset();
        using var after = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1, "after-"));

        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal((1, 1), (standIn.AcceptedEventCount, standIn.AcceptedRequestCount));
        Assert.Equal(0, Assert.Single(standIn.Requests).Index);
        Assert.Equal("after-0", Assert.Single(standIn.Events).UserId);
        Assert.Equal((0, false, 0, 0), (standIn.Faults.FailNextRequests, standIn.Faults.Unauthorized, standIn.Faults.RejectedUserIds.Count, standIn.Faults.Warnings.Count));
        Assert.Equal("kept", standIn.ApiToken);
    }
}
