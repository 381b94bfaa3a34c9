using System.Net;
using System.Net.Sockets;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// Transient failures seen row by row (MaxRequestRetries = 0), on a fake clock: each failure is read while the
/// clock stands still, so a row's next attempt is checked against the exact time of its failure.
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
    public async Task Dispatcher_TransientStatus_BacksOffPerRowThenDeadLetters(int status, string error)
    {
        harness.StandIn.Faults.FailStatusCode = status;
        harness.StandIn.Faults.FailNextRequests = 1_000;
        await AssertBacksOffThenDeadLettersAsync(error);
    }

    [Fact]
    public async Task Dispatcher_SuccessFalse_BacksOffPerRowThenDeadLetters()
    {
        harness.StandIn.Faults.SuccessFalse = true;
        await AssertBacksOffThenDeadLettersAsync("success: false");
        Assert.Equal(0, harness.StandIn.AcceptedEventCount);
    }

    [Fact]
    public async Task Dispatcher_ConnectionRefused_BacksOffPerRowThenDeadLetters()
    {
        var closed = ClosedLoopbackEndpoint();
        await AssertBacksOffThenDeadLettersAsync("network error", o => o.Endpoint = closed);
    }

    [Fact]
    public async Task Dispatcher_TooManyRequestsWithRetryAfter_NextAttemptWaitsAtLeastRetryAfter()
    {
        harness.StandIn.Faults.FailStatusCode = 429;
        harness.StandIn.Faults.FailNextRequests = 1;
        harness.StandIn.Faults.RetryAfter = TimeSpan.FromSeconds(60);
        await harness.EnqueueAsync([("ra", null)]);
        var clock = new WatchedClock();
        var failedAt = clock.GetUtcNow().UtcDateTime;
        await harness.StartHostAsync(Options, clock);

        // The dispatcher itself also waits out the Retry-After before it probes again.
        await clock.WaitForWaitsAsync(1, due => due >= TimeSpan.FromSeconds(60), Deadline);
        var row = Assert.Single(await harness.RowsAsync());
        Assert.Equal(1, row.Attempts);
        Assert.Contains("HTTP 429", row.LastError);

        // Retry-After wins over the (shorter) backoff and over RetryMaxDelay.
        Assert.True(row.NextAttemptAt >= failedAt + TimeSpan.FromSeconds(60), $"next attempt {row.NextAttemptAt:O}, failed at {failedAt:O}");

        clock.Advance(TimeSpan.FromSeconds(60));
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

    private async Task AssertBacksOffThenDeadLettersAsync(string error, Action<ThrivestackOptions>? configure = null)
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

        for (var attempt = 1; attempt < MaxAttempts; attempt++)
        {
            // Parked on its backoff: the failure was acknowledged at the current (frozen) time.
            await clock.WaitForWaitsAsync(attempt, IsBackoff, Deadline);
            var failedAt = clock.GetUtcNow().UtcDateTime;
            var row = Assert.Single(await harness.RowsAsync());
            Assert.Equal(OutboxRowState.Pending, row.State);
            Assert.Equal(attempt, row.Attempts);
            Assert.Null(row.LeaseId);
            Assert.Contains(error, row.LastError);

            // Exponential (base x 2^(n-1)), capped at RetryMaxDelay, jittered within the upper half.
            var ceiling = TimeSpan.FromTicks(Math.Min(MaxDelay.Ticks, BaseDelay.Ticks << (attempt - 1)));
            Assert.InRange(row.NextAttemptAt - failedAt, ceiling / 2, ceiling);

            clock.Advance(MaxDelay);
        }

        await harness.WaitForOutboxAsync(rows => rows.Count == 1 && rows[0].State == OutboxRowState.DeadLettered, Deadline);
        var dead = Assert.Single(await harness.RowsAsync());
        Assert.Equal(MaxAttempts, dead.Attempts);
        Assert.Contains($"gave up after {MaxAttempts} attempts", dead.LastError);
        Assert.Contains(error, dead.LastError);
        Assert.NotNull(dead.DeadLetteredAt);
    }

    private static Uri ClosedLoopbackEndpoint()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}/api/identify");
    }
}
