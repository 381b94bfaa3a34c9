using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// The library's named HttpClient has no timeout of its own (RequestTimeout, per attempt, is the library's), and an app-wide
/// default timeout (<c>ConfigureHttpClientDefaults</c>) does not apply to it, whether registered before or after the library.
/// </summary>
public sealed class HttpClientTimeoutTests : IAsyncLifetime
{
    private static readonly TimeSpan AppWideTimeout = TimeSpan.FromSeconds(1);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Theory]
    [InlineData("no defaults")]
    [InlineData("defaults registered before")]
    [InlineData("defaults registered after")]
    public void AddThrivestackIdentify_NamedHttpClient_HasAnInfiniteTimeout(string variant)
    {
        var services = new ServiceCollection();
        if (variant == "defaults registered before")
        {
            services.ConfigureHttpClientDefaults(b => b.ConfigureHttpClient(c => c.Timeout = AppWideTimeout));
        }

        var builder = services.AddThrivestackIdentify<TestDbContext>(o => o.ApiToken = "tok-timeout-8e1d07");
        if (variant == "defaults registered after")
        {
            services.ConfigureHttpClientDefaults(b => b.ConfigureHttpClient(c => c.Timeout = AppWideTimeout));
        }

        using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IHttpClientFactory>();

        // The client the dispatcher sends through is the one named by the options' name (the builder's HttpClient).
        var name = ThrivestackRegistration.OptionsName<TestDbContext>();
        Assert.Equal(name, builder.HttpClient.Name);
        using var client = factory.CreateClient(name);
        Assert.Equal(Timeout.InfiniteTimeSpan, client.Timeout);

        // The app's default does reach every other client: the test sees the setting it claims to be immune to.
        using var other = factory.CreateClient("app");
        Assert.Equal(variant == "no defaults" ? TimeSpan.FromSeconds(100) : AppWideTimeout, other.Timeout);
    }

    [Theory]
    [InlineData("defaults registered before")]
    [InlineData("defaults registered after")]
    public async Task Dispatcher_AppWideOneSecondTimeout_AnswerAfterTwoSecondsIsDeliveredInOneRequest(string variant)
    {
        // Slower than the app-wide timeout, well within RequestTimeout (5 s in the harness).
        harness.StandIn.Faults.Latency = TimeSpan.FromSeconds(2);
        var host = harness.BuildCustomHost(builder =>
        {
            if (variant == "defaults registered before")
            {
                builder.Services.ConfigureHttpClientDefaults(b => b.ConfigureHttpClient(c => c.Timeout = AppWideTimeout));
            }

            builder.Services.AddThrivestackIdentify<TestDbContext>(o => harness.Defaults(o, o => o.MaxRequestRetries = 0));
            if (variant == "defaults registered after")
            {
                builder.Services.ConfigureHttpClientDefaults(b => b.ConfigureHttpClient(c => c.Timeout = AppWideTimeout));
            }
        });
        await host.StartAsync();

        await DispatchHarness.SaveUsersAsync(host, 1);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0, TimeSpan.FromSeconds(20));

        // Had the 1 s timeout applied, the first request would have been abandoned and the dispatcher backed off.
        Assert.Equal([200], harness.StandIn.Requests.Select(r => r.StatusCode));
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(32));
    }
}
