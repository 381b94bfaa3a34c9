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
    [InlineData("no poll interval", "PollInterval is 00:00:00, but it must be positive")]
    [InlineData("negative poll interval", "PollInterval is -00:00:01, but it must be positive")]
    [InlineData("no lease", "LeaseDuration is 00:00:00, but it must be positive")]
    [InlineData("no request timeout", "RequestTimeout is 00:00:00, but it must be positive")]
    [InlineData("negative request timeout", "RequestTimeout is -00:00:01, but it must be positive")]
    [InlineData("no retry base delay", "RetryBaseDelay is 00:00:00, but it must be positive")]
    [InlineData("negative retry base delay", "RetryBaseDelay is -00:00:00.0200000, but it must be positive")]
    [InlineData("no attempts", "MaxAttempts is 0, but it must be at least 1")]
    [InlineData("negative request retries", "MaxRequestRetries is -1, but it must be between 0 and 10")]
    [InlineData("too many request retries", "MaxRequestRetries is 11, but it must be between 0 and 10")]
    [InlineData("negative retention", "DeliveredRetention is -00:00:01, but it cannot be negative")]
    [InlineData("too few bytes", "MaxBatchBytes is 1,023, but it must be between 1,024 and 2,000,000")]
    [InlineData("relative endpoint", "Endpoint '/api/identify' must be an absolute https URI")]
    [InlineData("no endpoint", "Endpoint '' must be an absolute https URI")]
    [InlineData("ftp endpoint", "Endpoint 'ftp://api.example.com/api/identify' must use https")]
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

    [Theory]
    [InlineData("http://user:" + Secret + "@api.example.com/api/identify", "Endpoint 'http://api.example.com/api/identify' (its user info, query and fragment not shown) uses plain http")]
    [InlineData("http://api.example.com/api/identify?api_key=" + Secret, "Endpoint 'http://api.example.com/api/identify' (its user info, query and fragment not shown) uses plain http")]
    [InlineData("ftp://api.example.com/api/identify#" + Secret, "Endpoint 'ftp://api.example.com/api/identify' (its user info, query and fragment not shown) must use https")]
    [InlineData("/api/identify?api_key=" + Secret, "Endpoint '/api/identify' (its user info, query and fragment not shown) must be an absolute https URI")]
    public async Task StartAsync_InvalidEndpointCarryingASecret_NamesTheEndpointWithoutIt(string endpoint, string expected)
    {
        // An endpoint copied with its credentials or a key in the query: the start-up error must not print them.
        var host = harness.BuildHost(o => o.Endpoint = new Uri(endpoint, UriKind.RelativeOrAbsolute));

        var exception = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(expected, exception.Message);
        Assert.DoesNotContain(Secret, exception.Message);
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

    [Theory]
    [InlineData("fewest bytes")]
    [InlineData("one event per batch")]
    [InlineData("one request in flight")]
    [InlineData("one attempt")]
    [InlineData("no quick retries")]
    [InlineData("most quick retries")]
    public async Task StartAsync_OptionAtTheEdgeOfItsRange_StartsAndDelivers(string edge)
    {
        await harness.EnqueueAsync([("edge", null)]);
        var host = harness.BuildHost(o =>
        {
            switch (edge)
            {
                case "fewest bytes":
                    o.MaxBatchBytes = 1_024;
                    break;
                case "one event per batch":
                    o.MaxEventsPerBatch = 1;
                    break;
                case "one request in flight":
                    o.MaxConcurrentRequests = 1;
                    break;
                case "one attempt":
                    o.MaxAttempts = 1;
                    break;
                case "no quick retries":
                    o.MaxRequestRetries = 0;
                    break;
                case "most quick retries":
                    // 11 attempts of 5 s and 10 waits of up to 5 s: 105 s, within nine tenths of a 2-minute lease.
                    o.MaxRequestRetries = 10;
                    o.LeaseDuration = TimeSpan.FromMinutes(2);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(edge), edge, null);
            }
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
            case "no poll interval":
                o.PollInterval = TimeSpan.Zero;
                break;
            case "negative poll interval":
                o.PollInterval = TimeSpan.FromSeconds(-1);
                break;
            case "no lease":
                o.LeaseDuration = TimeSpan.Zero;
                break;
            case "no request timeout":
                o.RequestTimeout = TimeSpan.Zero;
                break;
            case "negative request timeout":
                o.RequestTimeout = TimeSpan.FromSeconds(-1);
                break;
            case "no retry base delay":
                o.RetryBaseDelay = TimeSpan.Zero;
                break;
            case "negative retry base delay":
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(-20);
                break;
            case "no attempts":
                o.MaxAttempts = 0;
                break;
            case "negative request retries":
                o.MaxRequestRetries = -1;
                break;
            case "too many request retries":
                o.MaxRequestRetries = 11;
                break;
            case "negative retention":
                o.DeliveredRetention = TimeSpan.FromSeconds(-1);
                break;
            case "too few bytes":
                o.MaxBatchBytes = 1_023;
                break;
            case "relative endpoint":
                o.Endpoint = new Uri("/api/identify", UriKind.Relative);
                break;
            case "no endpoint":
                o.Endpoint = null!;
                break;
            case "ftp endpoint":
                o.Endpoint = new Uri("ftp://api.example.com/api/identify");
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(mistake), mistake, null);
        }
    }
}
