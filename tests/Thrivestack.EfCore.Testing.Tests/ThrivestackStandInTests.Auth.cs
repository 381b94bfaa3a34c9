using System.Net;
using Thrivestack.EfCore.Testing.Tests.Infrastructure;

namespace Thrivestack.EfCore.Testing.Tests;

public sealed partial class ThrivestackStandInTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("Bearer wrong-token")]
    [InlineData("Bearer test-toke")]
    [InlineData("Bearer test-token2")]
    [InlineData("bearer test-token")]
    [InlineData("Bearer  test-token")]
    [InlineData("Basic test-token")]
    [InlineData("test-token")]
    public async Task Post_MissingOrWrongBearerToken_Returns401WithoutEchoingIt(string? authorization)
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        using var request = StandInHttp.Identify(standIn, IdentifyJson.Users(1));
        request.Headers.Authorization = null;
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("""{"success":false,"message":"Access token missing or invalid"}""", body);
        Assert.Equal((0, 401), (standIn.AcceptedEventCount, Assert.Single(standIn.Requests).StatusCode));
    }

    [Theory]
    [InlineData(StandInAuthHeader.Bearer, StandInAuthHeader.Bearer, HttpStatusCode.OK)]
    [InlineData(StandInAuthHeader.Bearer, StandInAuthHeader.ApiKey, HttpStatusCode.Unauthorized)]
    [InlineData(StandInAuthHeader.ApiKey, StandInAuthHeader.ApiKey, HttpStatusCode.OK)]
    [InlineData(StandInAuthHeader.ApiKey, StandInAuthHeader.Bearer, HttpStatusCode.Unauthorized)]
    public async Task Post_AuthHeaderKind_AcceptedOnlyInTheConfiguredHeader(
        StandInAuthHeader configured, StandInAuthHeader sent, HttpStatusCode expected)
    {
        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { AuthHeader = configured, ApiToken = "key-1" });
        using var request = StandInHttp.Identify(standIn, IdentifyJson.Users(1));
        if (sent == StandInAuthHeader.ApiKey)
        {
            request.Headers.Authorization = null;
            request.Headers.Add("x-api-key", "key-1");
        }

        using var response = await client.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
    }

    [Fact]
    public async Task ApiToken_Rotated_RejectsOldTokenAndAcceptsNewOne()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        using var withOldToken = StandInHttp.Identify(standIn, IdentifyJson.Users(1));

        standIn.ApiToken = "rotated-token";
        using var oldResponse = await client.SendAsync(withOldToken);
        using var newResponse = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));

        Assert.Equal(HttpStatusCode.Unauthorized, oldResponse.StatusCode);
        Assert.Equal(HttpStatusCode.OK, newResponse.StatusCode);
        Assert.Equal("rotated-token", standIn.ApiToken);
    }

    [Fact]
    public async Task ApiToken_SetEmpty_Throws()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();

        Assert.Throws<ArgumentException>(() => standIn.ApiToken = string.Empty);
        Assert.Equal("test-token", standIn.ApiToken);
    }
}
