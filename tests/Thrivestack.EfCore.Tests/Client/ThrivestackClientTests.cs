using System.Net;
using System.Net.Sockets;
using System.Text;
using Thrivestack.EfCore.Client;

namespace Thrivestack.EfCore.Tests.Client;

/// <summary>The client against a loopback server that answers byte by byte what each test scripts.</summary>
public sealed class ThrivestackClientTests
{
    [Theory]
    [InlineData(301, ThrivestackAuthHeader.Bearer)]
    [InlineData(302, ThrivestackAuthHeader.Bearer)]
    [InlineData(303, ThrivestackAuthHeader.Bearer)]
    [InlineData(307, ThrivestackAuthHeader.Bearer)]
    [InlineData(308, ThrivestackAuthHeader.Bearer)]
    [InlineData(301, ThrivestackAuthHeader.ApiKey)]
    [InlineData(302, ThrivestackAuthHeader.ApiKey)]
    [InlineData(303, ThrivestackAuthHeader.ApiKey)]
    [InlineData(307, ThrivestackAuthHeader.ApiKey)]
    [InlineData(308, ThrivestackAuthHeader.ApiKey)]
    public async Task SendAsync_Redirect_IsMisconfiguredAndTheTargetReceivesNothing(int status, ThrivestackAuthHeader header)
    {
        await using var target = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("200 OK", """{"success":true}"""));
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer($"{status} Moved", "", $"Location: {target.Endpoint}"));
        using var client = new ClientUnderTest(server.Endpoint, o => o.AuthHeader = header);

        var result = await client.SendAsync();

        Assert.Equal(SendOutcome.Misconfigured, result.Outcome);
        Assert.Equal(status, result.StatusCode);
        Assert.Contains($"redirect to '{target.Endpoint}' not followed", result.Message);
        Assert.Single(server.Requests);
        Assert.Contains(ClientUnderTest.Token, server.Requests[0].Head);
        Assert.Equal(0, target.ConnectionCount);
        Assert.Empty(target.Requests);
    }

    [Theory]
    [InlineData("""{"success":true,"response_id":"r-1","message":"Identify event processed"}""", nameof(SendOutcome.Delivered))]
    [InlineData("""{"success":true,"eventId":"e-1","warnings":["trait x ignored"]}""", nameof(SendOutcome.Delivered))]
    [InlineData("""{"response_id":"r-2"}""", nameof(SendOutcome.Delivered))]
    [InlineData("""{}""", nameof(SendOutcome.Delivered))]
    [InlineData("\uFEFF{\"Success\":true}", nameof(SendOutcome.Delivered))]
    [InlineData("""{"success":false,"message":"try later"}""", nameof(SendOutcome.Transient))]
    [InlineData("""{"success":"false"}""", nameof(SendOutcome.Transient))]
    [InlineData("""{"success":"true"}""", nameof(SendOutcome.Transient))]
    [InlineData("""{"success":null}""", nameof(SendOutcome.Transient))]
    [InlineData("""{"success":1}""", nameof(SendOutcome.Transient))]
    [InlineData("""{"success":true,"message":"ok""", nameof(SendOutcome.Transient))]
    [InlineData("""{"success":tr""", nameof(SendOutcome.Transient))]
    [InlineData("", nameof(SendOutcome.Misconfigured))]
    [InlineData("   \r\n", nameof(SendOutcome.Misconfigured))]
    [InlineData("<!DOCTYPE html><html><body>Welcome to nginx!</body></html>", nameof(SendOutcome.Misconfigured))]
    [InlineData("OK", nameof(SendOutcome.Misconfigured))]
    [InlineData("""[{"success":true}]""", nameof(SendOutcome.Misconfigured))]
    [InlineData("\"success\"", nameof(SendOutcome.Misconfigured))]
    [InlineData("true", nameof(SendOutcome.Misconfigured))]
    public async Task SendAsync_SuccessStatus_OnlyThrivestacksJsonIsDelivered(string body, string expected)
    {
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("200 OK", body, "Content-Type: application/json"));
        using var client = new ClientUnderTest(server.Endpoint);

        var result = await client.SendAsync();

        Assert.Equal(Enum.Parse<SendOutcome>(expected), result.Outcome);
        Assert.Equal(200, result.StatusCode);
    }

    [Fact]
    public async Task SendAsync_DeliveredAnswer_CarriesResponseIdAndWarnings()
    {
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("200 OK", """{"success":true,"eventId":"e-7","warnings":["a",{"code":"w2"}]}"""));
        using var client = new ClientUnderTest(server.Endpoint);

        var result = await client.SendAsync();

        Assert.Equal(SendOutcome.Delivered, result.Outcome);
        Assert.Equal("e-7", result.ResponseId);
        Assert.Equal(["a", """{"code":"w2"}"""], result.Warnings);
    }

    [Theory]
    [InlineData("Content-Length: 200", "{\"success\":true,")]
    [InlineData("Transfer-Encoding: chunked", "10\r\n{\"success\":true,\r\n")]
    public async Task SendAsync_SuccessBodyBrokenOff_IsTransient(string framing, string partialBody)
    {
        var answer = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{framing}\r\n\r\n{partialBody}");
        await using var server = LoopbackHttpServer.Start(answer);
        using var client = new ClientUnderTest(server.Endpoint);

        var result = await client.SendAsync();

        Assert.Equal(SendOutcome.Transient, result.Outcome);
        Assert.Contains("truncated", result.Message);
    }

    [Fact]
    public async Task SendAsync_EndlessChunkedSuccess_ReturnsWithoutReadingItAll()
    {
        long written = 0;
        await using var server = LoopbackHttpServer.Start(async (_, _, stream, ct) =>
        {
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"u8.ToArray(), ct);
            var chunk = Encoding.ASCII.GetBytes($"4000\r\n{new string('x', 0x4000)}\r\n");
            while (true)
            {
                await stream.WriteAsync(chunk, ct);
                Interlocked.Add(ref written, chunk.Length);
            }
        });
        using var client = new ClientUnderTest(server.Endpoint, o => (o.RequestTimeout, o.LeaseDuration) = (TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(10)));

        var result = await client.SendAsync();
        await server.WaitForConnectionsAsync();

        Assert.Equal(SendOutcome.Misconfigured, result.Outcome);
        Assert.Contains("longer than 65,536 bytes", result.Message);

        // What the server managed to write includes the kernel's socket buffers, a few MB at most.
        Assert.InRange(Interlocked.Read(ref written), 0, 32L * 1024 * 1024);
    }

    [Fact]
    public async Task SendAsync_LongServerTexts_AreTruncatedTo500Characters()
    {
        var longText = new string('m', 5_000);
        await using var server = LoopbackHttpServer.Start(index => index switch
        {
            0 => LoopbackHttpServer.Answer("400 Bad Request", $$"""{"message":"{{longText}}"}"""),
            1 => LoopbackHttpServer.Answer($"503 {new string('r', 5_000)}"),
            2 => LoopbackHttpServer.Answer("302 Found", "", $"Location: http://127.0.0.1:9/{longText}"),
            _ => LoopbackHttpServer.Answer("200 OK", $$"""{"success":true,"message":"{{longText}}","eventId":"{{longText}}","warnings":["{{longText}}"]}"""),
        });
        using var client = new ClientUnderTest(server.Endpoint);

        var results = new List<SendResult>();
        for (var i = 0; i < 4; i++)
        {
            results.Add(await client.SendAsync());
        }

        Assert.Equal([SendOutcome.Rejected, SendOutcome.Transient, SendOutcome.Misconfigured, SendOutcome.Delivered], results.Select(r => r.Outcome));
        Assert.All(results, r => Assert.InRange(r.Message!.Length, 1, ServerText.MaxChars + 200));
        Assert.Equal(ServerText.MaxChars + 3, results[0].Message!.Length);
        Assert.Equal(ServerText.MaxChars + 3, results[3].ResponseId!.Length);
        Assert.Equal(ServerText.MaxChars + 3, Assert.Single(results[3].Warnings!).Length);
    }

    [Fact]
    public async Task SendAsync_ServerTextWithLineBreaks_ReachesTheResultOnOneLine()
    {
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("400 Bad Request", """{"message":"bad\r\n[Error] forged line"}"""));
        using var client = new ClientUnderTest(server.Endpoint);

        var result = await client.SendAsync();

        Assert.Equal("bad  [Error] forged line", result.Message);
    }

    [Theory]
    [InlineData(404, nameof(SendOutcome.Misconfigured))]
    [InlineData(405, nameof(SendOutcome.Misconfigured))]
    [InlineData(300, nameof(SendOutcome.Misconfigured))]
    [InlineData(400, nameof(SendOutcome.Rejected))]
    [InlineData(401, nameof(SendOutcome.Unauthorized))]
    [InlineData(403, nameof(SendOutcome.Unauthorized))]
    [InlineData(413, nameof(SendOutcome.TooLarge))]
    [InlineData(408, nameof(SendOutcome.Transient))]
    [InlineData(429, nameof(SendOutcome.Transient))]
    [InlineData(500, nameof(SendOutcome.Transient))]
    [InlineData(502, nameof(SendOutcome.Transient))]
    [InlineData(503, nameof(SendOutcome.Transient))]
    [InlineData(504, nameof(SendOutcome.Transient))]
    [InlineData(418, nameof(SendOutcome.Transient))]
    public async Task SendAsync_ErrorStatus_IsClassifiedWithItsStatusCode(int status, string expected)
    {
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer($"{status} Status", """{"message":"from the server"}"""));
        using var client = new ClientUnderTest(server.Endpoint);

        var result = await client.SendAsync();

        Assert.Equal(Enum.Parse<SendOutcome>(expected), result.Outcome);
        Assert.Equal(status, result.StatusCode);
    }

    [Fact]
    public async Task SendAsync_NotFound_NamesTheEndpointToCheck()
    {
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("404 Not Found", "<html>nothing here</html>", "Content-Type: text/html"));
        using var client = new ClientUnderTest(server.Endpoint);

        var result = await client.SendAsync();

        Assert.Equal($"HTTP 404: Not Found: {server.Endpoint.Authority}/api/identify does not take identify requests; check Endpoint", result.Describe());
    }

    [Theory]
    [InlineData("120", 120.0)]
    [InlineData("0", 0.0)]
    [InlineData("4294968", 86_400.0)]
    [InlineData("315360000", 86_400.0)]
    [InlineData("99999999999999999999999999", 86_400.0)]
    [InlineData("Fri, 31 Dec 9999 23:59:59 GMT", 86_400.0)]
    [InlineData("Sun, 06 Nov 1994 08:49:37 GMT", 0.0)]
    [InlineData("-5", null)]
    [InlineData("soon", null)]
    [InlineData("1.5", null)]
    [InlineData("", null)]
    public async Task SendAsync_RetryAfter_IsCappedAtOneDayAndNeverThrows(string header, double? expectedSeconds)
    {
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("503 Service Unavailable", "", $"Retry-After: {header}"));
        using var client = new ClientUnderTest(server.Endpoint);

        var result = await client.SendAsync();

        Assert.Equal(SendOutcome.Transient, result.Outcome);
        Assert.Equal(expectedSeconds is { } s ? TimeSpan.FromSeconds(s) : null, result.RetryAfter);
        Assert.InRange(result.RetryAfter?.TotalMilliseconds ?? 0, 0, uint.MaxValue - 1);
    }

    [Fact]
    public async Task SendAsync_RetryAfterHttpDateAhead_IsTheTimeUntilThen()
    {
        var at = DateTimeOffset.UtcNow.AddHours(2);
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("429 Too Many Requests", "", $"Retry-After: {at:r}"));
        using var client = new ClientUnderTest(server.Endpoint);

        var result = await client.SendAsync();

        Assert.InRange(result.RetryAfter!.Value, TimeSpan.FromHours(1), TimeSpan.FromHours(2));
    }

    [Theory]
    [InlineData("tok\r\nX-Injected: 1")]
    [InlineData("tok\n")]
    [InlineData("tok\u0000")]
    [InlineData("tok\t1")]
    [InlineData("tokén")]
    [InlineData("tok\u2028")]
    public async Task SendAsync_TokenProviderReturnsNoHeaderValue_IsUnauthorizedAndSendsNothing(string token)
    {
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("200 OK", """{"success":true}"""));
        foreach (var header in new[] { ThrivestackAuthHeader.Bearer, ThrivestackAuthHeader.ApiKey })
        {
            using var client = new ClientUnderTest(server.Endpoint, o =>
            {
                o.AuthHeader = header;
                o.TokenProvider = _ => ValueTask.FromResult(token);
            });

            var result = await client.SendAsync();

            Assert.Equal(SendOutcome.Unauthorized, result.Outcome);
            Assert.Null(result.StatusCode);
            Assert.Equal("TokenProvider returned a token that is not a valid header value (control or non-ASCII characters)", result.Message);
        }

        Assert.Equal(0, server.ConnectionCount);
    }

    [Fact]
    public async Task SendAsync_TokenProviderReturnsEmptyToken_IsUnauthorizedAndSendsNothing()
    {
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("200 OK", """{"success":true}"""));
        using var client = new ClientUnderTest(server.Endpoint, o => o.TokenProvider = _ => ValueTask.FromResult(string.Empty));

        var result = await client.SendAsync();

        Assert.Equal(SendOutcome.Unauthorized, result.Outcome);
        Assert.Equal("TokenProvider returned no token", result.Message);
        Assert.Equal(0, server.ConnectionCount);
    }

    [Fact]
    public async Task SendAsync_ConnectionRefused_NamesHostAndPortButNotPathOrQuery()
    {
        var port = ClosedPort();
        using var client = new ClientUnderTest(new Uri($"http://127.0.0.1:{port}/api/identify?key=secret-query-value"));

        var result = await client.SendAsync();

        Assert.Equal(SendOutcome.Transient, result.Outcome);
        Assert.Equal($"network error: could not connect to 127.0.0.1:{port} (ConnectionError: Connection refused)", result.Message);
    }

    [Fact]
    public async Task SendAsync_ConnectionClosedWithoutAnswer_NamesTheEndpointAndTheError()
    {
        await using var server = LoopbackHttpServer.Start((_, _, _, _) => Task.CompletedTask);
        using var client = new ClientUnderTest(server.Endpoint);

        var result = await client.SendAsync();

        Assert.Equal(SendOutcome.Transient, result.Outcome);
        Assert.StartsWith($"network error with 127.0.0.1:{server.Endpoint.Port} (ResponseEnded: ", result.Message);
        Assert.DoesNotContain(ClientUnderTest.Token, result.Message);
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
