using System.Net;
using System.Text.Json;
using Thrivestack.EfCore.Testing.Tests.Infrastructure;

namespace Thrivestack.EfCore.Testing.Tests;

public sealed partial class StandInFaultsTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly HttpClient client = new();

    public void Dispose() => client.Dispose();

    [Theory]
    [InlineData(503)]
    [InlineData(500)]
    [InlineData(429)]
    [InlineData(400)]
    public async Task FailNextRequests_Two_FailsTwoRequestsWithFailStatusCodeThenAccepts(int statusCode)
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.FailStatusCode = statusCode;
        standIn.Faults.FailNextRequests = 2;

        var codes = await PostSequentiallyAsync(standIn, 3);

        Assert.Equal([statusCode, statusCode, 200], codes);
        Assert.Equal(0, standIn.Faults.FailNextRequests);
        Assert.Equal("user-0", Assert.Single(standIn.Events).UserId);
        Assert.Equal(2, Assert.Single(standIn.Events).RequestIndex);
    }

    [Fact]
    public async Task ServerErrorRate_One_AnswersAlternately500And503AndStoresNothing()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.ServerErrorRate = 1.0;

        var codes = await PostSequentiallyAsync(standIn, 4);

        Assert.Equal([500, 503, 500, 503], codes);
        Assert.Equal(0, standIn.AcceptedEventCount);
        Assert.Equal("Service Unavailable", standIn.Requests[1].Error);
    }

    [Theory]
    [InlineData(1500, "2")]
    [InlineData(200, "1")]
    [InlineData(3000, "3")]
    [InlineData(0, "0")]
    public async Task TooManyRequestsRate_OneWithRetryAfter_Answers429WithRetryAfterSeconds(int retryAfterMs, string header)
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.TooManyRequestsRate = 1.0;
        standIn.Faults.RetryAfter = TimeSpan.FromMilliseconds(retryAfterMs);

        using var response = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));
        var body = await response.ReadJsonAsync();

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal([header], response.Headers.GetValues("Retry-After"));
        Assert.False(body.GetProperty("success").GetBoolean());
        Assert.Equal(0, standIn.AcceptedEventCount);
    }

    [Fact]
    public async Task RetryAfter_Set_CarriedBy503ButNot500()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.ServerErrorRate = 1.0;
        standIn.Faults.RetryAfter = TimeSpan.FromSeconds(7);

        using var first = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));
        using var second = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));

        Assert.Equal(HttpStatusCode.InternalServerError, first.StatusCode);
        Assert.False(first.Headers.Contains("Retry-After"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(7), second.Headers.RetryAfter!.Delta);
    }

    [Fact]
    public async Task TooManyRequestsRate_OneWithoutRetryAfter_Answers429WithoutHeader()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.TooManyRequestsRate = 1.0;

        using var response = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Null(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task Latency_LongerThanClientTimeout_ClientTimesOutAndRequestIsRecordedAsAborted()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.Latency = TimeSpan.FromMinutes(5);
        using var impatient = new HttpClient { Timeout = TimeSpan.FromMilliseconds(200) };

        await Assert.ThrowsAsync<TaskCanceledException>(() => impatient.PostIdentifyAsync(standIn, IdentifyJson.Users(1)));
        await standIn.WaitUntilAsync(s => s.Requests.Count == 1, Patience);

        var request = Assert.Single(standIn.Requests);
        Assert.Equal(499, request.StatusCode);
        Assert.Equal(0, standIn.AcceptedEventCount);
    }

    [Fact]
    public async Task Unauthorized_True_Answers401WithTheRightTokenUntilCleared()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.Unauthorized = true;

        var during = await PostSequentiallyAsync(standIn, 2);
        standIn.Faults.Unauthorized = false;
        var after = await PostSequentiallyAsync(standIn, 1);

        Assert.Equal([401, 401, 200], [.. during, .. after]);
    }

    [Fact]
    public async Task SuccessFalse_True_Answers200WithSuccessFalseAndStoresNothing()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.SuccessFalse = true;

        using var response = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));
        var body = await response.ReadJsonAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(body.GetProperty("success").GetBoolean());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("message").GetString()));
        Assert.Equal((0, 0), (standIn.AcceptedEventCount, standIn.AcceptedRequestCount));
        Assert.NotNull(Assert.Single(standIn.Requests).Error);
    }

    [Fact]
    public async Task RejectedUserIds_RequestContainsTwo_Rejects400NamingTheFirstAndStoresNone()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.RejectedUserIds.Add("bad-2");
        standIn.Faults.RejectedUserIds.Add("bad-1");
        var json = IdentifyJson.Batch(IdentifyJson.Event("good"), IdentifyJson.Event("bad-1"), IdentifyJson.Event("bad-2"));

        using var rejected = await client.PostIdentifyAsync(standIn, json);
        var body = await rejected.ReadJsonAsync();
        using var accepted = await client.PostIdentifyAsync(standIn, IdentifyJson.Batch(IdentifyJson.Event("good")));

        Assert.Equal(HttpStatusCode.BadRequest, rejected.StatusCode);
        Assert.Equal("event 1: user_id \"bad-1\" was rejected", body.GetProperty("message").GetString());
        Assert.Equal(["good", "bad-1", "bad-2"], standIn.Requests[0].UserIds);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        Assert.Equal(1, Assert.Single(standIn.Events).RequestIndex);
    }

    [Fact]
    public async Task EventIdResponse_WithWarnings_AnswersNewerShape()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        standIn.Faults.EventIdResponse = true;
        standIn.Faults.Warnings.Add("trait \"foo\" is unknown");
        standIn.Faults.Warnings.Add("second");

        using var response = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));
        var body = await response.ReadJsonAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(body.GetProperty("success").GetBoolean());
        Assert.True(Guid.TryParse(body.GetProperty("eventId").GetString(), out _));
        Assert.Equal(["trait \"foo\" is unknown", "second"], body.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()));
        Assert.False(body.TryGetProperty("response_id", out _));
        Assert.Equal(1, standIn.AcceptedEventCount);
    }

    [Fact]
    public async Task Seed_Same_GivesTheSameFaultSequence()
    {
        var options = new ThrivestackStandInOptions { Seed = 1234 };
        await using var first = await ThrivestackStandIn.StartAsync(options);
        await using var second = await ThrivestackStandIn.StartAsync(options);
        foreach (var faults in new[] { first.Faults, second.Faults })
        {
            faults.ServerErrorRate = 0.3;
            faults.TooManyRequestsRate = 0.3;
        }

        var firstCodes = await PostSequentiallyAsync(first, 30);
        var secondCodes = await PostSequentiallyAsync(second, 30);

        Assert.Equal(firstCodes, secondCodes);
        Assert.Contains(200, firstCodes);
        Assert.Contains(429, firstCodes);
    }

    [Theory]
    [InlineData(-0.01)]
    [InlineData(1.01)]
    [InlineData(double.NaN)]
    public async Task Rates_OutsideZeroToOne_Throw(double rate)
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        Assert.Throws<ArgumentOutOfRangeException>(() => standIn.Faults.ServerErrorRate = rate);
        Assert.Throws<ArgumentOutOfRangeException>(() => standIn.Faults.TooManyRequestsRate = rate);
    }

    [Theory]
    [InlineData(200)]
    [InlineData(399)]
    [InlineData(600)]
    public async Task FailStatusCode_NotAFailure_Throws(int statusCode)
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        Assert.Throws<ArgumentOutOfRangeException>(() => standIn.Faults.FailStatusCode = statusCode);
    }

    private async Task<int[]> PostSequentiallyAsync(ThrivestackStandIn standIn, int count)
    {
        var codes = new int[count];
        for (var i = 0; i < count; i++)
        {
            using var response = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));
            codes[i] = (int)response.StatusCode;
        }

        return codes;
    }
}
