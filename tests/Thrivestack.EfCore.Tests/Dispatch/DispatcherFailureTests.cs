using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// Transient failures (MaxRequestRetries = 0), on a fake clock: each failure is read while the clock stands still.
/// When every request fails, ThriveStack is down: the dispatcher backs off and no row spends an attempt.
/// </summary>
public sealed class DispatcherFailureTests : IAsyncLifetime
{
    private const int MaxAttempts = 5;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan BaseDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(3);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Theory]
    [InlineData(503, "HTTP 503")]
    [InlineData(500, "HTTP 500")]
    [InlineData(502, "HTTP 502")]
    [InlineData(408, "HTTP 408")]
    [InlineData(429, "HTTP 429")]
    public async Task Dispatcher_TransientStatusOnEveryRequest_BacksOffWithoutSpendingAttemptsThenDelivers(int status, string error)
    {
        harness.StandIn.Faults.FailStatusCode = status;
        harness.StandIn.Faults.FailNextRequests = 1_000;
        await AssertOutageSpendsNoAttemptAsync(error, () => harness.StandIn.Faults.FailNextRequests = 0);
    }

    [Fact]
    public async Task Dispatcher_SuccessFalseOnEveryRequest_BacksOffWithoutSpendingAttemptsThenDelivers()
    {
        harness.StandIn.Faults.SuccessFalse = true;
        await AssertOutageSpendsNoAttemptAsync("success: false", () => harness.StandIn.Faults.SuccessFalse = false);
    }

    [Fact]
    public async Task Dispatcher_ConnectionRefused_BacksOffWithoutSpendingAttempts()
    {
        var closed = ClosedLoopbackEndpoint();
        await AssertOutageSpendsNoAttemptAsync("network error", heal: null, o => o.Endpoint = closed);

        // Nothing has ever gone through: a wrong host or port looks the same as an outage, so the warning says where it sends.
        var backedOff = Assert.Single(harness.Logs.Lines, l => l.Is(32));
        Assert.Contains($"check Thrivestack:Endpoint, {closed}", backedOff.Message, StringComparison.Ordinal);
        Assert.Contains(closed.ToString(), Assert.Single(harness.Logs.Lines, l => l.Is(1)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dispatcher_OutageAfterADelivery_WarnsWithoutPointingAtTheEndpoint()
    {
        await harness.StartHostAsync();
        await harness.EnqueueAsync([("before", null)]);
        await harness.StandIn.WaitForEventsAsync(1, Deadline);

        harness.StandIn.Faults.FailNextRequests = 1_000;
        await harness.EnqueueAsync([("during", null)]);
        var backedOff = await harness.Logs.WaitForAsync(l => l.Is(32), Deadline);

        Assert.Contains("HTTP 503", backedOff.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Thrivestack:Endpoint", backedOff.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dispatcher_RetryAfterLongerThanRetryMaxDelay_WaitsRetryMaxDelayAndSpendsNoAttempt()
    {
        harness.StandIn.Faults.FailStatusCode = 429;
        harness.StandIn.Faults.FailNextRequests = 1;
        harness.StandIn.Faults.RetryAfter = TimeSpan.FromSeconds(60);
        await harness.EnqueueAsync([("ra", null)]);
        var clock = new WatchedClock();
        await harness.StartHostAsync(Options, clock);

        // Retry-After wins over the (shorter) backoff but never over RetryMaxDelay.
        await clock.WaitForWaitsAsync(1, due => due == MaxDelay, Deadline);
        var row = Assert.Single(await harness.RowsAsync());
        Assert.Equal(0, row.Attempts);
        Assert.Null(row.LeaseId);
        Assert.Single(harness.StandIn.Requests);

        clock.Advance(MaxDelay);
        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
    }

    [Fact]
    public async Task Dispatcher_ServerErrorsWithShortRetryAfter_AreRetriedInTheRequestAfterRetryAfterWithoutSpendingAnAttempt()
    {
        var retryAfter = TimeSpan.FromSeconds(2);
        harness.StandIn.Faults.FailNextRequests = 2;
        harness.StandIn.Faults.RetryAfter = retryAfter;
        await harness.EnqueueAsync([("qr", null)]);
        var clock = new WatchedClock();

        await harness.StartHostAsync(
            o =>
            {
                o.MaxRequestRetries = 2;
                o.DeliveredRetention = TimeSpan.FromHours(1);
            },
            clock);

        // Each quick retry waits exactly the Retry-After on the clock, and is not sent before it has passed.
        for (var retry = 1; retry <= 2; retry++)
        {
            await clock.WaitForWaitsAsync(retry, due => due == retryAfter, Deadline);
            Assert.Equal(retry, harness.StandIn.Requests.Count);
            clock.Advance(retryAfter);
        }

        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        Assert.Equal([503, 503, 200], harness.StandIn.Requests.Select(r => r.StatusCode));
        await harness.WaitForOutboxAsync(rows => rows.Count == 1 && rows[0].State == OutboxRowState.Delivered);
        Assert.Equal(0, Assert.Single(await harness.RowsAsync()).Attempts);
    }

    private static void Options(ThrivestackOptions o)
    {
        o.MaxRequestRetries = 0;
        o.MaxAttempts = MaxAttempts;
        o.RetryBaseDelay = BaseDelay;
        o.RetryMaxDelay = MaxDelay;
    }

    // The dispatcher's backoff waits are at most RetryMaxDelay; the HTTP timeouts on the same clock are far longer.
    private static bool IsBackoff(TimeSpan due) => due > TimeSpan.Zero && due <= MaxDelay;

    // More failed probes than MaxAttempts: had they counted, the row would be dead-lettered.
    private async Task AssertOutageSpendsNoAttemptAsync(string error, Action? heal, Action<ThrivestackOptions>? configure = null)
    {
        await harness.EnqueueAsync([("flaky", null)]);
        var clock = new WatchedClock();
        await harness.StartHostAsync(
            o =>
            {
                Options(o);
                configure?.Invoke(o);
            },
            clock);

        for (var probe = 1; probe <= MaxAttempts + 2; probe++)
        {
            // Parked on the dispatcher's backoff: the failure was handled at the current (frozen) time.
            await clock.WaitForWaitsAsync(probe, IsBackoff, Deadline);
            var row = Assert.Single(await harness.RowsAsync());
            Assert.Equal(OutboxRowState.Pending, row.State);
            Assert.Equal(0, row.Attempts);
            Assert.Null(row.LeaseId);
            clock.Advance(MaxDelay);
        }

        var backedOff = Assert.Single(harness.Logs.Lines, l => l.Is(32));
        Assert.Contains(error, backedOff.Message);
        if (heal is null)
        {
            return;
        }

        heal();
        await clock.WaitForWaitsAsync(MaxAttempts + 3, IsBackoff, Deadline);
        clock.Advance(MaxDelay);
        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(8)), Deadline);
    }

    [Fact]
    public async Task Dispatcher_RateLimitedAfterTheFirstPagesFirstDelivery_WarnsWithoutPointingAtTheEndpoint()
    {
        // One page of three one-event batches, one request at a time: the first is delivered, every later one answered 429.
        var limiter = new RefuseAfterFirst();
        await harness.EnqueueAsync([("a", null), ("b", null), ("c", null)]);
        await harness.BuildHost(
            o =>
            {
                o.MaxEventsPerBatch = 1;
                o.MaxConcurrentRequests = 1;
                o.MaxRequestRetries = 0;
            },
            services: s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => limiter)).StartAsync();

        var backedOff = await harness.Logs.WaitForAsync(l => l.Is(32), Deadline);

        Assert.Single(harness.StandIn.Events);
        Assert.Contains("HTTP 429", backedOff.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Thrivestack:Endpoint", backedOff.Message, StringComparison.Ordinal);
    }

    private static Uri ClosedLoopbackEndpoint()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}/api/identify");
    }

    /// <summary>Lets the first request through to the stand-in and answers every later one 429 itself, as a rate limit would.</summary>
    private sealed class RefuseAfterFirst : DelegatingHandler
    {
        private int requests;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Interlocked.Increment(ref requests) == 1
                ? base.SendAsync(request, cancellationToken)
                : Task.FromResult(new HttpResponseMessage(HttpStatusCode.TooManyRequests) { RequestMessage = request });
    }
}
