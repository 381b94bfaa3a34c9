using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>An endpoint that answers as ThriveStack never does (here a 404 page) pauses sending as a refused token does.</summary>
public sealed class DispatcherMisconfiguredTests : IAsyncLifetime
{
    private const string Secret = "q-9d41-do-not-log";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private DispatchHarness harness = null!;
    private LoopbackGateway gateway = null!;
    private int wrong = 1;

    public async Task InitializeAsync()
    {
        harness = await DispatchHarness.StartAsync();
        gateway = await LoopbackGateway.StartAsync(harness.StandIn.Endpoint);
    }

    public async Task DisposeAsync()
    {
        await harness.DisposeAsync();
        await gateway.DisposeAsync();
    }

    [Fact]
    public async Task Dispatcher_EndpointAnswers404_PausesOnceNamingStatusAndEndpointSpendsNoAttemptAndResumes()
    {
        gateway.Intercept = _ => Volatile.Read(ref wrong) == 1 ? new LoopbackGateway.Answer(404, "<html><body>Not Found</body></html>") : null;
        await harness.EnqueueAsync(Enumerable.Range(0, 4).Select(i => ($"m{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var endpoint = new Uri(gateway.Endpoint, $"?tenant={Secret}");

        // The pauses run on the fake clock, moved on by RetryMaxDelay whenever the dispatcher waits; only pauses and polls
        // (at most RetryMaxDelay) end on it, never a lease or a request.
        var step = TimeSpan.FromMilliseconds(200);
        var clock = new WatchedClock();
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(step, stopClock.Token);
        try
        {
            await PausesAndResumesAsync(endpoint, clock, step);
        }
        finally
        {
            await stopClock.CancelAsync();
            await driving;
        }
    }

    [Fact]
    public async Task Dispatcher_EndpointAnswers404RightAfterADelivery_PausesWithoutSpendingAnAttempt()
    {
        Volatile.Write(ref wrong, 0);
        gateway.Intercept = _ => Volatile.Read(ref wrong) == 1 ? new LoopbackGateway.Answer(404, "<html><body>Not Found</body></html>") : null;
        var step = TimeSpan.FromMilliseconds(200);
        var clock = new WatchedClock();
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(step, stopClock.Token);
        try
        {
            var host = await harness.StartHostAsync(
                o =>
                {
                    o.Endpoint = gateway.Endpoint;
                    o.MaxRequestRetries = 0;
                    o.PollInterval = step;
                    o.RetryMaxDelay = step;
                    o.LeaseDuration = TimeSpan.FromHours(1);
                    o.RequestTimeout = TimeSpan.FromMinutes(10);
                },
                clock);
            await DispatchHarness.SaveUsersAsync(host, 1, "before");
            await harness.StandIn.WaitForEventsAsync(1, Deadline);

            // The last request went through, yet a wrong endpoint is never the event's fault.
            Volatile.Write(ref wrong, 1);
            await DispatchHarness.SaveUsersAsync(host, 1, "after");
            await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(31)), Deadline);
            var row = Assert.Single(await harness.RowsAsync());
            Assert.Equal(OutboxRowState.Pending, row.State);
            Assert.Equal(0, row.Attempts);

            Volatile.Write(ref wrong, 0);
            await harness.StandIn.WaitForEventsAsync(2, Deadline);
            await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        }
        finally
        {
            await stopClock.CancelAsync();
            await driving;
        }
    }

    private async Task PausesAndResumesAsync(Uri endpoint, TimeProvider clock, TimeSpan step)
    {
        var host = harness.BuildHost(
            o =>
            {
                o.Endpoint = endpoint;
                o.MaxEventsPerBatch = 2;
                o.MaxAttempts = 2;
                o.MaxRequestRetries = 0;
                o.DeliveredRetention = TimeSpan.FromHours(1);
                o.PollInterval = step;
                o.RetryMaxDelay = step;
                o.LeaseDuration = TimeSpan.FromHours(1);
                o.RequestTimeout = TimeSpan.FromMinutes(10);
            },
            clock,
            s => s.AddHealthChecks().AddThrivestackOutboxCheck<TestDbContext>(degradedAfter: TimeSpan.FromHours(1)));
        await host.StartAsync();

        // More refused probes than MaxAttempts: had they counted, every row would be dead-lettered by now.
        await harness.StandIn.WaitUntilAsync(_ => gateway.Requests >= 5, Deadline);
        Assert.All(await harness.RowsAsync(), r =>
        {
            Assert.Equal(OutboxRowState.Pending, r.State);
            Assert.Equal(0, r.Attempts);
        });
        var paused = Assert.Single(harness.Logs.Lines, l => l.Is(31));
        Assert.Equal(LogLevel.Error, paused.Level);
        Assert.Contains("404", paused.Message);
        Assert.Contains(gateway.Endpoint.GetLeftPart(UriPartial.Path), paused.Message);
        Assert.DoesNotContain(Secret, paused.Message);
        var health = (await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["thrivestack-outbox"];
        Assert.Equal(HealthStatus.Degraded, health.Status);
        Assert.Contains("paused", health.Description);
        Assert.DoesNotContain(Secret, health.Description);

        Volatile.Write(ref wrong, 0);

        await harness.StandIn.WaitForEventsAsync(4, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.All(r => r.State == OutboxRowState.Delivered && r.Attempts == 0));
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(8)), Deadline);
        Assert.Single(harness.Logs.Lines, l => l.Is(8));
        Assert.Single(harness.Logs.Lines, l => l.Is(31));
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(7) || l.Is(32));
        Assert.Equal(HealthStatus.Healthy, (await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["thrivestack-outbox"].Status);
    }
}
