using System.Net;
using System.Text;
using System.Text.Json;
using Thrivestack.EfCore.Testing.Tests.Infrastructure;

namespace Thrivestack.EfCore.Testing.Tests;

public sealed partial class ThrivestackStandInTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly HttpClient client = new();

    public void Dispose() => client.Dispose();

    [Fact]
    public async Task StartAsync_DefaultOptions_ListensOnLoopbackIdentifyPath()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        Assert.Equal("127.0.0.1", standIn.Endpoint.Host);
        Assert.NotEqual(0, standIn.Endpoint.Port);
        Assert.Equal("/api/identify", standIn.Endpoint.AbsolutePath);
        Assert.Equal("test-token", standIn.ApiToken);
    }

    [Fact]
    public async Task StartAsync_CustomPath_ServesOnlyThatPath()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { Path = "/v2/identify" });

        using var response = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));

        Assert.Equal("/v2/identify", standIn.Endpoint.AbsolutePath);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("", "/api/identify", "ApiToken")]
    [InlineData("token", "api/identify", "Path")]
    [InlineData("token", "/api/identify?x=1", "Path")]
    public async Task StartAsync_InvalidOption_ThrowsNamingTheOption(string token, string path, string option)
    {
        var options = new ThrivestackStandInOptions { ApiToken = token, Path = path };

        var exception = await Assert.ThrowsAsync<ArgumentException>(() => ThrivestackStandIn.StartAsync(options));

        Assert.Contains($"ThrivestackStandInOptions.{option}", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Post_ValidBatch_AnswersSuccessAndRecordsEventsWithTraitsAndGroupId()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        var first = IdentifyJson.Event(
            "u-1",
            traits: """{"email":"ada@example.com","enrichment_phone":["+1","+2"]}""",
            context: """{"group_id":"g-7","ip":"10.0.0.1"}""");
        var json = IdentifyJson.Batch(first, IdentifyJson.Event("u-2"));

        using var response = await client.PostIdentifyAsync(standIn, json);
        var body = await response.ReadJsonAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(body.GetProperty("success").GetBoolean());
        Assert.True(Guid.TryParse(body.GetProperty("response_id").GetString(), out _));
        Assert.Equal("User(s) identified successfully", body.GetProperty("message").GetString());
        Assert.Collection(
            standIn.Events,
            e =>
            {
                Assert.Equal("u-1", e.UserId);
                Assert.Equal(new DateTimeOffset(2023, 12, 14, 16, 7, 33, TimeSpan.Zero).AddTicks(5_711_250), e.Timestamp);
                Assert.Equal("g-7", e.GroupId);
                Assert.Equal("ada@example.com", e.Traits!.Value.GetProperty("email").GetString());
                Assert.Equal(2, e.Traits.Value.GetProperty("enrichment_phone").GetArrayLength());
                Assert.Equal("10.0.0.1", e.Context!.Value.GetProperty("ip").GetString());
                Assert.Equal(0, e.RequestIndex);
                Assert.Equal(first, e.Json);
            },
            e =>
            {
                Assert.Equal("u-2", e.UserId);
                Assert.Null(e.GroupId);
                Assert.Null(e.Traits);
                Assert.Null(e.Context);
            });
        var request = Assert.Single(standIn.Requests);
        Assert.Equal((0, 200, 2, Encoding.UTF8.GetByteCount(json), (string?)null), (request.Index, request.StatusCode, request.EventCount, request.BodyBytes, request.Error));
        Assert.Equal(["u-1", "u-2"], request.UserIds);
        Assert.Equal((2, 1), (standIn.AcceptedEventCount, standIn.AcceptedRequestCount));
    }

    [Fact]
    public async Task Post_RecordEventsOff_CountsWithoutKeepingEvents()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { RecordEvents = false });

        using var response = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(3));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal((3, 1), (standIn.AcceptedEventCount, standIn.AcceptedRequestCount));
        Assert.Empty(standIn.Events);
        var request = Assert.Single(standIn.Requests);
        Assert.Equal(3, request.EventCount);
        Assert.Empty(request.UserIds);
    }

    [Fact]
    public async Task EventsFor_SeveralUsers_ReturnsOnlyThatUsersEventsInOrder()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        using var first = await client.PostIdentifyAsync(standIn, IdentifyJson.Batch(IdentifyJson.Event("a"), IdentifyJson.Event("b")));
        using var second = await client.PostIdentifyAsync(standIn, IdentifyJson.Batch(IdentifyJson.Event("a", traits: """{"n":2}""")));

        var events = standIn.EventsFor("a");

        Assert.Equal([0, 1], events.Select(e => e.RequestIndex));
        Assert.Equal(2, events[1].Traits!.Value.GetProperty("n").GetInt32());
    }

    [Fact]
    public async Task Post_WrongPath_Returns404AndRecordsIt()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        using var request = StandInHttp.Identify(standIn, IdentifyJson.Users(1));
        request.RequestUri = new Uri(standIn.Endpoint, "/api/track");

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(404, Assert.Single(standIn.Requests).StatusCode);
        Assert.Equal(0, standIn.AcceptedEventCount);
    }

    [Fact]
    public async Task Get_IdentifyPath_Returns405AllowingPost()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        using var response = await client.GetAsync(standIn.Endpoint);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal(["POST"], response.Content.Headers.Allow);
    }

    [Fact]
    public async Task Post_TwentyInParallel_RecordsEveryRequestAndEventInIndexOrder()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            Task.Run(() => client.PostIdentifyAsync(standIn, IdentifyJson.Users(3, $"p{i}-")))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Array.ForEach(responses, r => r.Dispose());
        Assert.Equal((60, 20), (standIn.AcceptedEventCount, standIn.AcceptedRequestCount));
        Assert.Equal(Enumerable.Range(0, 20), standIn.Requests.Select(r => r.Index));
        var events = standIn.Events;
        Assert.Equal(60, events.Select(e => e.UserId).Distinct().Count());
        Assert.Equal(events.Select(e => e.RequestIndex).Order(), events.Select(e => e.RequestIndex));
    }

    [Fact]
    public async Task DisposeAsync_Running_StopsServingAndCanBeRepeated()
    {
        var standIn = await ThrivestackStandIn.StartAsync();
        var endpoint = standIn.Endpoint;

        await standIn.DisposeAsync();
        await standIn.DisposeAsync();

        using var content = new StringContent(IdentifyJson.Users(1));
        await Assert.ThrowsAsync<HttpRequestException>(() => client.PostAsync(endpoint, content));
    }
}
