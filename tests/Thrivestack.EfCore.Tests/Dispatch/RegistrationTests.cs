using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Testing;
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
}
