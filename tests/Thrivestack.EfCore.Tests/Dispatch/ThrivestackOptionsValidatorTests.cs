using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

public sealed class ThrivestackOptionsValidatorTests : IAsyncLifetime
{
    private const string Secret = "tok-validator-6b1f0c";

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Theory]
    [InlineData("missing token", "ApiToken is missing")]
    [InlineData("blank token", "ApiToken is missing")]
    [InlineData("plain http to a remote host", "Endpoint 'http://api.example.com/api/identify' uses plain http")]
    [InlineData("too many events", "MaxEventsPerBatch is 1,001")]
    [InlineData("no events", "MaxEventsPerBatch is 0")]
    [InlineData("too many bytes", "MaxBatchBytes is 2,000,001")]
    [InlineData("lease shorter than request", "LeaseDuration (00:00:05) is too short for one request with its quick retries: RequestTimeout (00:00:10) for each of 1 attempt(s) (MaxRequestRetries 0)")]
    [InlineData("lease shorter than request with retries", "for each of 3 attempt(s) (MaxRequestRetries 2) and the waits between them take up to 00:00:40, which must fit in nine tenths of the lease, or a slow request would be cut off when its lease ends: make LeaseDuration at least 00:00:45")]
    [InlineData("no requests in flight", "MaxConcurrentRequests is 0, but it must be between 1 and 64")]
    [InlineData("too many requests in flight", "MaxConcurrentRequests is 65")]
    public async Task StartAsync_InvalidOption_ThrowsNamingTheOptionAndValueBeforeAnythingRuns(string mistake, string expected)
    {
        var host = harness.BuildHost(o =>
        {
            o.ApiToken = Secret;
            Misconfigure(mistake, o);
        });

        var exception = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(expected, exception.Message);
        Assert.DoesNotContain(Secret, exception.Message);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(1));
    }

    [Fact]
    public async Task StartAsync_SeveralInvalidOptions_ReportsEachOne()
    {
        var host = harness.BuildHost(o =>
        {
            o.ApiToken = null;
            o.MaxEventsPerBatch = 5_000;
            o.MaxBatchBytes = 3_000_000;
        });

        var exception = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Equal(3, exception.Failures.Count());
        Assert.Contains("ApiToken", exception.Message);
        Assert.Contains("MaxEventsPerBatch is 5,000", exception.Message);
        Assert.Contains("MaxBatchBytes is 3,000,000", exception.Message);
    }

    [Theory]
    [InlineData("http://127.0.0.1:9/api/identify")]
    [InlineData("http://localhost:9/api/identify")]
    [InlineData("http://[::1]:9/api/identify")]
    [InlineData("https://api.app.thrivestack.ai/api/identify")]
    public async Task StartAsync_HttpsOrLoopbackEndpoint_Starts(string endpoint)
    {
        var host = harness.BuildHost(o => o.Endpoint = new Uri(endpoint));

        await host.StartAsync();

        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(1)), TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task StartAsync_LimitsAtTheirMaximum_StartsAndDelivers()
    {
        await harness.EnqueueAsync([("edge", null)]);
        var host = harness.BuildHost(o =>
        {
            o.MaxEventsPerBatch = 1000;
            o.MaxBatchBytes = 2_000_000;
            o.MaxConcurrentRequests = 64;

            // The shortest lease that holds a request with its quick retries: 3 x 10 s + 2 x 5 s = 40 s in nine tenths of it.
            o.RequestTimeout = TimeSpan.FromSeconds(10);
            o.MaxRequestRetries = 2;
            o.LeaseDuration = TimeSpan.FromSeconds(40 / 0.9);
        });

        await host.StartAsync();

        await harness.StandIn.WaitForEventsAsync(1, TimeSpan.FromSeconds(30));
    }

    private static void Misconfigure(string mistake, ThrivestackOptions o)
    {
        switch (mistake)
        {
            case "missing token":
                o.ApiToken = null;
                break;
            case "blank token":
                o.ApiToken = "  ";
                break;
            case "plain http to a remote host":
                o.Endpoint = new Uri("http://api.example.com/api/identify");
                break;
            case "too many events":
                o.MaxEventsPerBatch = 1_001;
                break;
            case "no events":
                o.MaxEventsPerBatch = 0;
                break;
            case "too many bytes":
                o.MaxBatchBytes = 2_000_001;
                break;
            case "lease shorter than request":
                o.LeaseDuration = TimeSpan.FromSeconds(5);
                o.RequestTimeout = TimeSpan.FromSeconds(10);
                o.MaxRequestRetries = 0;
                break;
            case "lease shorter than request with retries":
                // 40 s fit in a 44 s lease, but not in nine tenths of it.
                o.LeaseDuration = TimeSpan.FromSeconds(44);
                o.RequestTimeout = TimeSpan.FromSeconds(10);
                o.MaxRequestRetries = 2;
                break;
            case "no requests in flight":
                o.MaxConcurrentRequests = 0;
                break;
            case "too many requests in flight":
                o.MaxConcurrentRequests = 65;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(mistake), mistake, null);
        }
    }
}
