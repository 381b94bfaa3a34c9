using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Client;

/// <summary>Answers that must never count as delivery, through a running dispatcher.</summary>
public sealed class ThrivestackClientDispatchTests : IAsyncLifetime
{
    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Theory]
    [InlineData(ThrivestackAuthHeader.ApiKey)]
    [InlineData(ThrivestackAuthHeader.Bearer)]
    public async Task Dispatcher_EndpointRedirects_TokenAndEventsNeverReachTheTargetAndTheRowIsNotDelivered(ThrivestackAuthHeader header)
    {
        await using var target = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("200 OK", """{"success":true}"""));
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("307 Temporary Redirect", "", $"Location: {target.Endpoint}"));
        var host = harness.BuildHost(o =>
        {
            o.Endpoint = server.Endpoint;
            o.AuthHeader = header;
        });
        await host.StartAsync();

        await DispatchHarness.SaveUsersAsync(host, 1);
        await harness.StandIn.WaitUntilAsync(_ => server.Requests.Count >= 2, TimeSpan.FromSeconds(30));

        Assert.Equal(0, target.ConnectionCount);
        var row = Assert.Single(await harness.RowsAsync());
        Assert.NotEqual(OutboxRowState.Delivered, row.State);
    }

    [Theory]
    [InlineData("<!DOCTYPE html><html><body>Sign in to continue</body></html>", "text/html")]
    [InlineData("", "application/json")]
    [InlineData("""{"success":"false"}""", "application/json")]
    public async Task Dispatcher_SuccessStatusWithoutThrivestacksAnswer_DoesNotDeliverTheRow(string body, string contentType)
    {
        await using var server = LoopbackHttpServer.Start(LoopbackHttpServer.Answer("200 OK", body, $"Content-Type: {contentType}"));
        var host = harness.BuildHost(o => o.Endpoint = server.Endpoint);
        await host.StartAsync();

        await DispatchHarness.SaveUsersAsync(host, 1);
        await harness.StandIn.WaitUntilAsync(_ => server.Requests.Count >= 2, TimeSpan.FromSeconds(30));

        var row = Assert.Single(await harness.RowsAsync());
        Assert.NotEqual(OutboxRowState.Delivered, row.State);
    }
}
