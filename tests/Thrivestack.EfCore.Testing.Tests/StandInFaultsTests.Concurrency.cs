using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Thrivestack.EfCore.Testing.Tests.Infrastructure;

namespace Thrivestack.EfCore.Testing.Tests;

public sealed partial class StandInFaultsTests
{
    [Fact]
    public async Task MaxConcurrentRequests_OneRequestBeyondTheLimit_Answers429WithoutRetryAfterUntilOneFinishes()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.MaxConcurrentRequests = 2;
        standIn.Faults.RetryAfter = TimeSpan.FromSeconds(5);
        var first = new HeldContent(IdentifyJson.Users(1, "first-"));
        var second = new HeldContent(IdentifyJson.Users(1, "second-"));
        var firstSent = SendHeldAsync(standIn, first);
        var secondSent = SendHeldAsync(standIn, second);
        await standIn.WaitUntilAsync(s => s.InFlightRequestCount == 2, Patience);

        using var refused = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1, "third-"));
        var refusedBody = await refused.ReadJsonAsync();
        first.Release();
        using var firstAnswer = await firstSent;
        using var fourth = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1, "fourth-"));
        second.Release();
        using var secondAnswer = await secondSent;

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.False(refused.Headers.Contains("Retry-After"));
        Assert.False(refusedBody.GetProperty("success").GetBoolean());
        Assert.Equal(
            [HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK],
            [firstAnswer.StatusCode, fourth.StatusCode, secondAnswer.StatusCode]);
        Assert.Equal(["first-0", "fourth-0", "second-0"], standIn.Events.Select(e => e.UserId).Order());
        Assert.Equal((3, 1, 1), (standIn.AcceptedRequestCount, standIn.ConcurrencyLimitRefusedCount, standIn.TooManyRequestsCount));
        Assert.Equal((0, 2), (standIn.InFlightRequestCount, standIn.PeakConcurrentRequests));
    }

    [Fact]
    public async Task MaxConcurrentRequests_LimitReached_UnauthorizedRequestIsAnswered401AndNotCounted()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.MaxConcurrentRequests = 1;
        var held = new HeldContent(IdentifyJson.Users(1));
        var heldSent = SendHeldAsync(standIn, held);
        await standIn.WaitUntilAsync(s => s.InFlightRequestCount == 1, Patience);

        using var unauthorized = StandInHttp.Identify(standIn, IdentifyJson.Users(1));
        unauthorized.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "wrong-token");
        using var answer = await client.SendAsync(unauthorized);
        held.Release();
        using var heldAnswer = await heldSent;

        Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
        Assert.Equal(HttpStatusCode.OK, heldAnswer.StatusCode);
        Assert.Equal((0, 1), (standIn.ConcurrencyLimitRefusedCount, standIn.PeakConcurrentRequests));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public async Task MaxConcurrentRequests_LessThanOne_Throws(int limit)
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        Assert.Throws<ArgumentOutOfRangeException>(() => standIn.Faults.MaxConcurrentRequests = limit);
    }

    [Fact]
    public async Task Latency_ConcurrentRequests_EachWaitsLatencyInParallel()
    {
        const int Concurrent = 4;
        var clock = new TimerRecordingTimeProvider();
        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { TimeProvider = clock });
        standIn.Faults.Latency = TimeSpan.FromSeconds(10);

        Task<HttpResponseMessage>[] sent = [.. Enumerable.Range(0, Concurrent).Select(i => client.PostIdentifyAsync(standIn, IdentifyJson.Users(1, $"u{i}-")))];
        await standIn.WaitUntilAsync(_ => clock.DueTimes.Count == Concurrent, Patience);
        var inFlight = standIn.InFlightRequestCount;
        clock.Advance(TimeSpan.FromSeconds(10));
        var answers = await Task.WhenAll(sent);

        Assert.Equal(Concurrent, inFlight);
        Assert.All(clock.DueTimes, due => Assert.Equal(TimeSpan.FromSeconds(10), due));
        Assert.All(answers, answer => Assert.Equal(HttpStatusCode.OK, answer.StatusCode));
        Assert.Equal((Concurrent, Concurrent), (standIn.PeakConcurrentRequests, standIn.AcceptedRequestCount));
        Array.ForEach(answers, answer => answer.Dispose());
    }

    [Fact]
    public async Task LatencyJitter_Set_EachRequestWaitsLatencyPlusADrawWithinTheJitter()
    {
        const int Concurrent = 20;
        var clock = new TimerRecordingTimeProvider();
        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { TimeProvider = clock, Seed = 7 });
        standIn.Faults.Latency = TimeSpan.FromSeconds(1);
        standIn.Faults.LatencyJitter = TimeSpan.FromMilliseconds(500);

        Task<HttpResponseMessage>[] sent = [.. Enumerable.Range(0, Concurrent).Select(i => client.PostIdentifyAsync(standIn, IdentifyJson.Users(1, $"u{i}-")))];
        await standIn.WaitUntilAsync(_ => clock.DueTimes.Count == Concurrent, Patience);
        var delays = clock.DueTimes;
        clock.Advance(TimeSpan.FromMilliseconds(1500));
        var answers = await Task.WhenAll(sent);

        Assert.All(delays, delay => Assert.InRange(delay, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(1500)));
        Assert.True(delays.Distinct().Count() > Concurrent / 2, $"delays: {string.Join(", ", delays)}");
        Assert.All(answers, answer => Assert.Equal(HttpStatusCode.OK, answer.StatusCode));
        Array.ForEach(answers, answer => answer.Dispose());
    }

    [Fact]
    public void LatencyJitter_SameSeed_DrawsTheSameDelays()
    {
        var first = Draw(new StandInFaults(42));
        var second = Draw(new StandInFaults(42));

        Assert.Equal(first, second);
        Assert.All(first, delay => Assert.InRange(delay, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(150)));

        static TimeSpan[] Draw(StandInFaults faults)
        {
            faults.Latency = TimeSpan.FromMilliseconds(100);
            faults.LatencyJitter = TimeSpan.FromMilliseconds(50);
            return [.. Enumerable.Range(0, 50).Select(_ => faults.NextLatency())];
        }
    }

    [Fact]
    public async Task LatencyJitter_Negative_Throws()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        Assert.Throws<ArgumentOutOfRangeException>(() => standIn.Faults.LatencyJitter = TimeSpan.FromTicks(-1));
    }

    [Fact]
    public async Task TooManyRequestsCount_RateAndLimit_CountsEvery429()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.TooManyRequestsRate = 1.0;

        var codes = await PostSequentiallyAsync(standIn, 2);

        Assert.Equal([429, 429], codes);
        Assert.Equal((2, 0), (standIn.TooManyRequestsCount, standIn.ConcurrencyLimitRefusedCount));
    }

    [Fact]
    public async Task Reset_AfterConcurrencyLimitRefusal_ClearsCountersAndSettings()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.MaxConcurrentRequests = 1;
        var held = new HeldContent(IdentifyJson.Users(1));
        var heldSent = SendHeldAsync(standIn, held);
        await standIn.WaitUntilAsync(s => s.InFlightRequestCount == 1, Patience);
        using var refused = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));
        held.Release();
        using var heldAnswer = await heldSent;
        (int, int, int) before = (standIn.PeakConcurrentRequests, standIn.ConcurrencyLimitRefusedCount, standIn.TooManyRequestsCount);
        standIn.Faults.LatencyJitter = TimeSpan.FromSeconds(1);

        standIn.Reset();

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal((1, 1, 1), before);
        Assert.Equal((0, 0, 0, 0), (standIn.PeakConcurrentRequests, standIn.ConcurrencyLimitRefusedCount, standIn.TooManyRequestsCount, standIn.InFlightRequestCount));
        Assert.Null(standIn.Faults.MaxConcurrentRequests);
        Assert.Equal(TimeSpan.Zero, standIn.Faults.LatencyJitter);
    }

    private async Task<HttpResponseMessage> SendHeldAsync(ThrivestackStandIn standIn, HeldContent content)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, standIn.Endpoint) { Content = content };
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", standIn.ApiToken);
        return await client.SendAsync(request);
    }
}
