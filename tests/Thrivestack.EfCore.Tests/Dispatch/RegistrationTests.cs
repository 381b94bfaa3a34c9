using System.Diagnostics.Metrics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Testing;
using Thrivestack.EfCore.Tests.Client;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

public sealed class RegistrationTests : IAsyncLifetime
{
    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync(standInOptions: new ThrivestackStandInOptions { AuthHeader = StandInAuthHeader.ApiKey });

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task AddThrivestackIdentify_CalledTwice_RegistersOneDispatcherAndDeliversEachEventOnce()
    {
        var host = harness.BuildHost(
            o => o.AuthHeader = ThrivestackAuthHeader.ApiKey,
            services: services => services.AddThrivestackIdentify<TestDbContext>(o => o.MaxEventsPerBatch = 3));
        await host.StartAsync();

        await DispatchHarness.SaveUsersAsync(host, 10);
        await harness.StandIn.WaitForEventsAsync(10, TimeSpan.FromSeconds(30));
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);

        Assert.Single(host.Services.GetServices<IHostedService>().OfType<OutboxDispatcher<TestDbContext>>());
        Assert.Single(harness.Logs.Lines, l => l.Is(1));
        Assert.Equal(10, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
        Assert.Equal(10, harness.StandIn.AcceptedEventCount);

        // Both calls configure the same options: the second call's batch size applies on top of the first's.
        Assert.All(harness.StandIn.Requests, r => Assert.InRange(r.EventCount, 1, 3));
    }

    [Fact]
    public async Task AddThrivestackIdentify_ConfigurationAndDelegate_StillOneDispatcher()
    {
        var host = harness.BuildCustomHost(builder =>
        {
            builder.Configuration.AddInMemoryCollection(Settings());
            builder.Services.AddThrivestackIdentify<TestDbContext>(builder.Configuration);
            builder.Services.AddThrivestackIdentify<TestDbContext>(o => o.MaxAttempts = 4);
        });

        await host.StartAsync();

        Assert.Single(host.Services.GetServices<IHostedService>().OfType<OutboxDispatcher<TestDbContext>>());
        var options = host.Services.GetRequiredService<IOptionsMonitor<ThrivestackOptions>>().Get(ThrivestackRegistration.OptionsName<TestDbContext>());
        Assert.Equal(4, options.MaxAttempts);
        Assert.Equal(harness.StandIn.ApiToken, options.ApiToken);
    }

    [Fact]
    public async Task AddThrivestackIdentify_ConfigurationOnly_BindsTheThrivestackSectionAndDelivers()
    {
        var host = harness.BuildCustomHost(builder =>
        {
            builder.Configuration.AddInMemoryCollection(Settings());
            builder.Services.AddThrivestackIdentify<TestDbContext>(builder.Configuration);
        });
        await host.StartAsync();

        var options = host.Services.GetRequiredService<IOptionsMonitor<ThrivestackOptions>>().Get(ThrivestackRegistration.OptionsName<TestDbContext>());
        Assert.Equal(harness.StandIn.Endpoint, options.Endpoint);
        Assert.Equal(ThrivestackAuthHeader.ApiKey, options.AuthHeader);
        Assert.Equal(2, options.MaxEventsPerBatch);
        Assert.Equal(50_000, options.MaxBatchBytes);
        Assert.Equal(TimeSpan.FromMilliseconds(200), options.PollInterval);
        Assert.Equal(TimeSpan.FromSeconds(30), options.LeaseDuration);
        Assert.Equal(TimeSpan.FromSeconds(10), options.RequestTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(20), options.RetryBaseDelay);
        Assert.Equal(TimeSpan.FromMilliseconds(400), options.RetryMaxDelay);
        Assert.Equal(1, options.MaxRequestRetries);
        Assert.Equal(7, options.MaxAttempts);
        Assert.Equal(TimeSpan.FromHours(1), options.DeliveredRetention);

        await DispatchHarness.SaveUsersAsync(host, 5);

        // Delivered with x-api-key (the stand-in refuses Bearer), in batches of at most 2, and kept for the retention.
        await harness.StandIn.WaitForEventsAsync(5, TimeSpan.FromSeconds(30));
        Assert.All(harness.StandIn.Requests, r => Assert.Equal(200, r.StatusCode));
        Assert.All(harness.StandIn.Requests, r => Assert.InRange(r.EventCount, 1, 2));
        await harness.WaitForOutboxAsync(rows => rows.Count == 5 && rows.All(r => r.State == OutboxRowState.Delivered));
    }

    [Fact]
    public async Task AddThrivestackIdentify_ConfigurationWithoutToken_FailsAtStartNamingTheSetting()
    {
        var settings = Settings();
        settings.Remove("Thrivestack:ApiToken");
        var host = harness.BuildCustomHost(builder =>
        {
            builder.Configuration.AddInMemoryCollection(settings);
            builder.Services.AddThrivestackIdentify<TestDbContext>(builder.Configuration);
        });

        var exception = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Thrivestack:ApiToken", exception.Message);
    }

    [Theory]
    [InlineData("no defaults")]
    [InlineData("defaults registered before")]
    [InlineData("defaults registered after")]
    public async Task AddThrivestackIdentify_AppWideStandardResilienceHandler_SendsRetriesAndTimesOutExactlyAsWithout(string variant)
    {
        // Four 503s then success: the library's own pipeline makes 3 attempts (2 quick retries), the row waits, then 2 more.
        await using var server = LoopbackHttpServer.Start(index => index < 4
            ? LoopbackHttpServer.Answer("503 Service Unavailable")
            : LoopbackHttpServer.Answer("200 OK", """{"success":true}"""));
        var host = harness.BuildCustomHost(builder =>
        {
            if (variant == "defaults registered before")
            {
                builder.Services.ConfigureHttpClientDefaults(b => b.AddStandardResilienceHandler());
            }

            builder.Services.AddThrivestackIdentify<TestDbContext>(o => harness.Defaults(o, o => o.Endpoint = server.Endpoint));
            if (variant == "defaults registered after")
            {
                builder.Services.ConfigureHttpClientDefaults(b => b.AddStandardResilienceHandler());
            }
        });
        using var meters = new MeterRecorder(host.Services.GetRequiredService<IMeterFactory>());
        await host.StartAsync();

        await DispatchHarness.SaveUsersAsync(host, 1);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);

        // The library's own pipeline decides: 3 attempts (2 quick retries), a backoff of the whole dispatcher (every
        // request failed: an outage, so the row spends no attempt), then 2 attempts. Its own log and metrics say so.
        Assert.Equal(5, server.Requests.Count);
        Assert.Single(harness.Logs.Lines, l => l.Is(32) && l.Message.Contains("HTTP 503"));
        Assert.Equal(
            ["Transient", "Delivered"],
            meters.For("thrivestack.identify.request.duration").Select(m => (string)m.Tags["thrivestack.outcome"]!));

        // IHttpClientFactory's loggers (on by default for every client) are removed from the library's client.
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Category.StartsWith("System.Net.Http.HttpClient.Thrivestack", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AddThrivestackIdentify_HandlerAddedThroughTheBuilder_SeesEveryRequestAndDefaultHandlersDoNot()
    {
        var ours = new CountingHandler.Counter();
        var everyClient = new CountingHandler.Counter();
        var host = harness.BuildCustomHost(builder =>
        {
            builder.Services.ConfigureHttpClientDefaults(b => b.AddHttpMessageHandler(() => new CountingHandler(everyClient)));
            builder.Services.AddThrivestackIdentify<TestDbContext>(o => harness.Defaults(o, o => (o.MaxEventsPerBatch, o.AuthHeader) = (1, ThrivestackAuthHeader.ApiKey)))
                .HttpClient.AddHttpMessageHandler(() => new CountingHandler(ours));
        });
        await host.StartAsync();

        await DispatchHarness.SaveUsersAsync(host, 3);
        await harness.StandIn.WaitForEventsAsync(3, TimeSpan.FromSeconds(30));

        Assert.Equal(harness.StandIn.Requests.Count, ours.Count);
        Assert.InRange(ours.Count, 3, int.MaxValue);
        Assert.Equal(0, everyClient.Count);
    }

    [Fact]
    public async Task AddThrivestackIdentify_ConfigureWithAService_TokenProviderFromTheContainerDelivers()
    {
        var tokens = new TokenSource(harness.StandIn.ApiToken);
        var host = harness.BuildCustomHost(builder =>
        {
            builder.Services.AddSingleton(tokens);
            builder.Services.AddThrivestackIdentify<TestDbContext>(o => harness.Defaults(o, o => (o.ApiToken, o.AuthHeader) = (null, ThrivestackAuthHeader.ApiKey)))
                .Configure<TokenSource>((o, source) => o.TokenProvider = source.GetAsync);
        });
        await host.StartAsync();

        await DispatchHarness.SaveUsersAsync(host, 2);
        await harness.StandIn.WaitForEventsAsync(2, TimeSpan.FromSeconds(30));

        Assert.InRange(tokens.Calls, 1, int.MaxValue);
        Assert.Equal(2, harness.StandIn.AcceptedEventCount);
    }

    [Fact]
    public void AddThrivestackIdentify_TwoContextsBoundToTwoSections_EachBindsExactlyItsSection()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Identify:Main:ApiToken"] = "tok-main",
            ["Identify:Main:MaxEventsPerBatch"] = "7",
            ["Identify:Main:Thrivestack:ApiToken"] = "tok-nested",
            ["Identify:Billing:ApiToken"] = "tok-billing",
            ["Thrivestack:ApiToken"] = "tok-root",
        }).Build();
        var services = new ServiceCollection();
        services.AddThrivestackIdentify<TestDbContext>(configuration.GetSection("Identify:Main"));
        services.AddThrivestackIdentify<BillingContext>(configuration.GetSection("Identify:Billing"));
        using var provider = services.BuildServiceProvider();
        var monitor = provider.GetRequiredService<IOptionsMonitor<ThrivestackOptions>>();

        var main = monitor.Get(ThrivestackRegistration.OptionsName<TestDbContext>());
        var billing = monitor.Get(ThrivestackRegistration.OptionsName<BillingContext>());

        Assert.Equal("tok-main", main.ApiToken);
        Assert.Equal(7, main.MaxEventsPerBatch);
        Assert.Equal("tok-billing", billing.ApiToken);
        Assert.Equal(100, billing.MaxEventsPerBatch);
    }

    [Fact]
    public void AddThrivestackIdentify_ConfigurationRoot_BindsItsThrivestackSection()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ApiToken"] = "tok-top-level",
            ["Thrivestack:ApiToken"] = "tok-root",
        }).Build();
        var services = new ServiceCollection();
        services.AddThrivestackIdentify<TestDbContext>(configuration);
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptionsMonitor<ThrivestackOptions>>().Get(ThrivestackRegistration.OptionsName<TestDbContext>());

        Assert.Equal("tok-root", options.ApiToken);
    }

    private Dictionary<string, string?> Settings() => new()
    {
        ["Thrivestack:Endpoint"] = harness.StandIn.Endpoint.ToString(),
        ["Thrivestack:ApiToken"] = harness.StandIn.ApiToken,
        ["Thrivestack:AuthHeader"] = "ApiKey",
        ["Thrivestack:MaxEventsPerBatch"] = "2",
        ["Thrivestack:MaxBatchBytes"] = "50000",
        ["Thrivestack:PollInterval"] = "00:00:00.200",
        ["Thrivestack:LeaseDuration"] = "00:00:30",
        ["Thrivestack:RequestTimeout"] = "00:00:10",
        ["Thrivestack:RetryBaseDelay"] = "00:00:00.020",
        ["Thrivestack:RetryMaxDelay"] = "00:00:00.400",
        ["Thrivestack:MaxRequestRetries"] = "1",
        ["Thrivestack:MaxAttempts"] = "7",
        ["Thrivestack:DeliveredRetention"] = "01:00:00",
    };

    private sealed class BillingContext(DbContextOptions<BillingContext> options) : DbContext(options);

    private sealed class TokenSource(string token)
    {
        private int calls;

        public int Calls => Volatile.Read(ref calls);

        public ValueTask<string> GetAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref calls);
            return ValueTask.FromResult(token);
        }
    }

    private sealed class CountingHandler(CountingHandler.Counter counter) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            counter.Increment();
            return base.SendAsync(request, cancellationToken);
        }

        public sealed class Counter
        {
            private int count;

            public int Count => Volatile.Read(ref count);

            public void Increment() => Interlocked.Increment(ref count);
        }
    }
}
