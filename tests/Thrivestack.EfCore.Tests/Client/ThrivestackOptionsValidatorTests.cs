using Microsoft.Extensions.Options;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Client;

public sealed class ThrivestackOptionsValidatorTests : IAsyncLifetime
{
    private const string Secret = "tok-header-3c9e01";

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Theory]
    [InlineData(Secret + "\n")]
    [InlineData(Secret + "\r\n")]
    [InlineData(Secret + "\r\nX-Injected: 1")]
    [InlineData(Secret + "\u0007")]
    [InlineData(Secret + "\u007f")]
    [InlineData(Secret + "é")]
    [InlineData(Secret + "\u00a0")]
    public async Task StartAsync_ApiTokenNotAHeaderValue_FailsNamingApiTokenWithoutPrintingIt(string token)
    {
        var host = harness.BuildHost(o => o.ApiToken = token);

        var exception = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("ApiToken contains control or non-ASCII characters (such as a line break at its end), so it cannot be sent as an HTTP header value: remove them from Thrivestack:ApiToken", exception.Message);
        Assert.DoesNotContain(Secret, exception.Message);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(1));
    }

    [Fact]
    public async Task StartAsync_ApiTokenWithSpaceInside_Starts()
    {
        var host = harness.BuildHost(o => o.ApiToken = "tok with space");

        await host.StartAsync();

        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(1)), TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task StartAsync_SeveralInvalidOptions_JoinsOneSentencePerOption()
    {
        var host = harness.BuildHost(o =>
        {
            o.ApiToken = null;
            o.MaxEventsPerBatch = 5_000;
            o.RetryMaxDelay = TimeSpan.FromMilliseconds(1);
        });

        var exception = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        var prefix = "ThrivestackOptions of TestDbContext: ";
        Assert.Equal(
            prefix + "ApiToken is missing: set Thrivestack:ApiToken (for example from a secret store), or TokenProvider for rotating tokens, or Thrivestack:SendingEnabled to false to run without a ThriveStack account (events stay in the outbox); "
            + prefix + "MaxEventsPerBatch is 5,000, but ThriveStack accepts 1 to 1,000 events per request; "
            + prefix + "RetryMaxDelay (00:00:00.0010000) is shorter than RetryBaseDelay (00:00:00.0200000), but it must be at least as long",
            exception.Message);
        Assert.DoesNotContain(".;", exception.Message);
    }
}
