using System.Net;
using System.Text;
using System.Text.Json;
using Thrivestack.EfCore.Testing.Tests.Infrastructure;

namespace Thrivestack.EfCore.Testing.Tests;

public sealed partial class ThrivestackStandInTests
{
    private const string Ts = IdentifyJson.Timestamp;

    public static TheoryData<string, string> InvalidBodies => new()
    {
        { "", "request body is not valid JSON" },
        { "[{\"user_id\":\"a\",", "request body is not valid JSON" },
        { "{}", "request body must be a JSON array of identify events" },
        { "\"a\"", "request body must be a JSON array of identify events" },
        { "[]", "request body must contain at least 1 event" },
        { "[1]", "event 0: must be a JSON object" },
        { "[[]]", "event 0: must be a JSON object" },
        { $$"""[{"timestamp":"{{Ts}}"}]""", "event 0: user_id must be a non-empty string" },
        { $$"""[{"user_id":42,"timestamp":"{{Ts}}"}]""", "event 0: user_id must be a non-empty string" },
        { $$"""[{"user_id":null,"timestamp":"{{Ts}}"}]""", "event 0: user_id must be a non-empty string" },
        { $$"""[{"user_id":"","timestamp":"{{Ts}}"}]""", "event 0: user_id must be a non-empty string" },
        { """[{"user_id":"a"}]""", "event 0: timestamp must be an ISO 8601 UTC date-time" },
        { """[{"user_id":"a","timestamp":1702570053}]""", "event 0: timestamp must be an ISO 8601 UTC date-time" },
        { """[{"user_id":"a","timestamp":"yesterday"}]""", "event 0: timestamp must be an ISO 8601 UTC date-time" },
        { """[{"user_id":"a","timestamp":"2023-12-14T16:07:33.571125+02:00"}]""", "event 0: timestamp must be an ISO 8601 UTC date-time" },
        { """[{"user_id":"a","timestamp":"2023-12-14T16:07:33.571125+00:00"}]""", "event 0: timestamp must be an ISO 8601 UTC date-time" },
        { """[{"user_id":"a","timestamp":"2023-12-14T16:07:33.571125"}]""", "event 0: timestamp must be an ISO 8601 UTC date-time" },
        { """[{"user_id":"a","timestamp":"2023-12-14"}]""", "event 0: timestamp must be an ISO 8601 UTC date-time" },
        { """[{"user_id":"a","timestamp":"2023-13-14T16:07:33Z"}]""", "event 0: timestamp must be an ISO 8601 UTC date-time" },
        { """[{"user_id":"a","timestamp":"12/14/2023 16:07:33Z"}]""", "event 0: timestamp must be an ISO 8601 UTC date-time" },
        { $$"""[{"user_id":"a","timestamp":"{{Ts}}","traits":[]}]""", "event 0: traits must be a JSON object" },
        { $$"""[{"user_id":"a","timestamp":"{{Ts}}","traits":"x"}]""", "event 0: traits must be a JSON object" },
        { $$"""[{"user_id":"a","timestamp":"{{Ts}}","traits":null}]""", "event 0: traits must be a JSON object" },
        { $$"""[{"user_id":"a","timestamp":"{{Ts}}","context":"x"}]""", "event 0: context must be a JSON object" },
        { $$$"""[{"user_id":"a","timestamp":"{{{Ts}}}","context":{"group_id":7}}]""", "event 0: context.group_id must be a string" },
        { $$$"""[{"user_id":"a","timestamp":"{{{Ts}}}","context":{"group_id":null}}]""", "event 0: context.group_id must be a string" },
        { $$"""[{"user_id":"a","timestamp":"{{Ts}}"},{"user_id":"b"}]""", "event 1: timestamp must be an ISO 8601 UTC date-time" },
    };

    [Theory]
    [MemberData(nameof(InvalidBodies))]
    public async Task Post_InvalidBody_Returns400NamingEventAndRule(string json, string expectedMessage)
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        using var response = await client.PostIdentifyAsync(standIn, json);
        var body = await response.ReadJsonAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(body.GetProperty("success").GetBoolean());
        var message = body.GetProperty("message").GetString()!;
        Assert.StartsWith(expectedMessage, message, StringComparison.Ordinal);
        Assert.Equal(message, Assert.Single(standIn.Requests).Error);
        Assert.Empty(standIn.Events);
        Assert.Equal(0, standIn.AcceptedEventCount);
    }

    [Theory]
    [InlineData("application/json", HttpStatusCode.OK)]
    [InlineData("application/json; charset=utf-8", HttpStatusCode.OK)]
    [InlineData("Application/JSON; charset=\"UTF-8\"", HttpStatusCode.OK)]
    [InlineData("application/json; charset=iso-8859-1", HttpStatusCode.BadRequest)]
    [InlineData("text/plain", HttpStatusCode.BadRequest)]
    [InlineData("application/x-www-form-urlencoded", HttpStatusCode.BadRequest)]
    [InlineData("application/jsonx", HttpStatusCode.BadRequest)]
    public async Task Post_ContentType_AcceptsOnlyJson(string contentType, HttpStatusCode expected)
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        using var request = StandInHttp.Identify(standIn, IdentifyJson.Users(1), contentType);

        using var response = await client.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
        Assert.Equal(expected == HttpStatusCode.OK ? null : "Content-Type must be application/json", Assert.Single(standIn.Requests).Error);
    }

    [Fact]
    public async Task Post_NoContentType_Returns400()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        using var request = StandInHttp.Identify(standIn, IdentifyJson.Users(1));
        request.Content!.Headers.ContentType = null;

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Theory]
    [InlineData(2_000_000, false, HttpStatusCode.OK)]
    [InlineData(2_000_001, false, HttpStatusCode.BadRequest)]
    [InlineData(2_000_000, true, HttpStatusCode.OK)]
    [InlineData(2_000_001, true, HttpStatusCode.BadRequest)]
    [InlineData(3_000_000, true, HttpStatusCode.BadRequest)]
    public async Task Post_BodySize_AcceptsAtMost2000000Bytes(int size, bool chunked, HttpStatusCode expected)
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        var bytes = Encoding.UTF8.GetBytes(IdentifyJson.OfSize(size));
        using var request = StandInHttp.Identify(standIn, "[]");
        request.Content = chunked ? new ChunkedContent(bytes) : new ByteArrayContent(bytes);
        request.Content.Headers.ContentType = new("application/json");

        using var response = await client.SendAsync(request);

        Assert.Equal(size, bytes.Length);
        Assert.Equal(expected, response.StatusCode);
        var received = Assert.Single(standIn.Requests);
        if (expected == HttpStatusCode.OK)
        {
            Assert.Equal(size, received.BodyBytes);
            Assert.Equal(size - 2, Assert.Single(standIn.Events).Json.Length);
        }
        else
        {
            Assert.Equal("request body exceeds 2,000,000 bytes", received.Error);
        }
    }

    [Theory]
    [InlineData(1, HttpStatusCode.OK)]
    [InlineData(1_000, HttpStatusCode.OK)]
    [InlineData(1_001, HttpStatusCode.BadRequest)]
    public async Task Post_EventCount_AcceptsAtMost1000Events(int count, HttpStatusCode expected)
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        using var response = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(count));

        Assert.Equal(expected, response.StatusCode);
        Assert.Equal(expected == HttpStatusCode.OK ? count : 0, standIn.AcceptedEventCount);
        var received = Assert.Single(standIn.Requests);
        Assert.Equal(count, received.EventCount);
        Assert.Equal(expected == HttpStatusCode.OK ? null : "request body contains 1001 events; at most 1,000 are allowed", received.Error);
    }

    [Fact]
    public async Task Post_UnknownFieldsAndEmptyObjects_Accepted()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        var json = """[{"user_id":"a","timestamp":"2024-02-29T23:59:59Z","traits":{},"context":{},"extra":1}]""";

        using var response = await client.PostIdentifyAsync(standIn, json);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(Assert.Single(standIn.Events).GroupId);
    }
}
