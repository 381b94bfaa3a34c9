using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// "A 429 never counts against an event": a rate limit is never the event's fault, so a 429 spends no attempt even
/// when the dispatcher's other requests go through (where any other transient failure would). And a 429 is retried in
/// place only when one request at a time is sent; with more allowed, the concurrency limit handles it.
/// </summary>
public sealed class RateLimitAttemptTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Theory]
    [InlineData(8, 1)]
    [InlineData(1, 1)]
    [InlineData(1, null)]
    public async Task Dispatcher_429AfterOtherRequestsWentThrough_SpendsNoAttemptAndDeliversLater(int maxConcurrentRequests, int? retryAfterSeconds)
    {
        // MaxAttempts = 1: had the 429 spent an attempt, the row would be dead-lettered at once.
        var host = await harness.StartHostAsync(o =>
        {
            o.MaxAttempts = 1;
            o.MaxRequestRetries = 0;
            o.MaxConcurrentRequests = maxConcurrentRequests;
            o.DeliveredRetention = TimeSpan.FromHours(1);
        });

        // A delivered batch first: the dispatcher now has evidence that others go through, the case where a 5xx would
        // spend an attempt.
        await DispatchHarness.SaveUsersAsync(host, 1, "first");
        await harness.WaitForOutboxAsync(rows => rows.Count == 1 && rows[0].State == OutboxRowState.Delivered, Deadline);

        // The Retry-After (1 s) is capped by the harness's RetryMaxDelay (200 ms), so the row is sent again soon.
        harness.StandIn.Faults.FailStatusCode = 429;
        harness.StandIn.Faults.RetryAfter = retryAfterSeconds is int seconds ? TimeSpan.FromSeconds(seconds) : null;
        harness.StandIn.Faults.FailNextRequests = 1;
        await DispatchHarness.SaveUsersAsync(host, 1, "second");

        await harness.WaitForOutboxAsync(rows => rows.Count == 2 && rows[1].State != OutboxRowState.Pending, Deadline);
        var second = (await harness.RowsAsync())[1];
        Assert.Equal(OutboxRowState.Delivered, second.State);
        Assert.Equal(0, second.Attempts);
        Assert.Null(second.LastError);

        // The stand-in records user ids only of bodies it validated, so not of the 429 (a fault comes before validation).
        var requests = harness.StandIn.Requests;
        Assert.Equal([200, 429, 200], requests.Select(r => r.StatusCode));
        Assert.Equal([second.UserId], requests[2].UserIds);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(5) || l.Is(6));
    }

    [Fact]
    public async Task Dispatcher_429WithOneRequestAtATime_IsRetriedQuicklyWithinTheSameSend()
    {
        harness.StandIn.Faults.FailStatusCode = 429;
        harness.StandIn.Faults.FailNextRequests = 1;
        await harness.EnqueueAsync([("quick", null)]);
        var host = harness.BuildHost(o =>
        {
            o.MaxConcurrentRequests = 1;
            o.MaxRequestRetries = 1;
        });
        using var meters = new MeterRecorder(host.Services.GetRequiredService<IMeterFactory>());
        await host.StartAsync();

        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);

        // The only row, so the same batch both times (the 429's user ids are not recorded: a fault comes before validation).
        var requests = harness.StandIn.Requests;
        Assert.Equal([429, 200], requests.Select(r => r.StatusCode));
        Assert.Equal(requests[0].BodyBytes, requests[1].BodyBytes);
        Assert.Equal(["quick"], requests[1].UserIds);

        // One send (the client records each send once, its quick retries included) and no backoff of the dispatcher: the
        // retry happened inside the request's pipeline, not as a second send after the cycle failed.
        Assert.Equal(["Delivered"], Outcomes(meters));
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(32));
    }

    [Fact]
    public async Task Dispatcher_429WithSeveralRequestsAllowed_IsNotRetriedInPlace()
    {
        harness.StandIn.Faults.FailStatusCode = 429;
        harness.StandIn.Faults.FailNextRequests = 1;
        await harness.EnqueueAsync([("limited", null)]);
        var host = harness.BuildHost(o =>
        {
            o.MaxConcurrentRequests = 2;
            o.MaxRequestRetries = 2;
        });
        using var meters = new MeterRecorder(host.Services.GetRequiredService<IMeterFactory>());
        await host.StartAsync();

        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);

        // The 429 ends its send (the concurrency limit's signal is not hidden by a retry); the row goes out in a later one.
        Assert.Equal([429, 200], harness.StandIn.Requests.Select(r => r.StatusCode));
        Assert.Equal(["Transient", "Delivered"], Outcomes(meters));
    }

    private static IEnumerable<string> Outcomes(MeterRecorder meters) =>
        meters.For("thrivestack.identify.request.duration").Select(m => (string)m.Tags["thrivestack.outcome"]!);
}
