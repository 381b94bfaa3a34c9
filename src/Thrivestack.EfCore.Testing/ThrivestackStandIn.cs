using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Thrivestack.EfCore.Testing.Recording;
using Thrivestack.EfCore.Testing.Server;

namespace Thrivestack.EfCore.Testing;

/// <summary>
/// A strict stand-in for ThriveStack's <c>POST /api/identify</c>: a real HTTP server on 127.0.0.1 that checks every request
/// against the API's rules (auth, content type, shape, limits), records what it accepted, and can inject faults.
/// </summary>
/// <example>
/// <code>
/// await using var standIn = await ThrivestackStandIn.StartAsync();
/// // point the client at standIn.Endpoint with standIn.ApiToken, save a user, then:
/// await standIn.WaitForEventsAsync(1, TimeSpan.FromSeconds(10));
/// </code>
/// </example>
public sealed class ThrivestackStandIn : IAsyncDisposable
{
    private static readonly TimeSpan RecheckInterval = TimeSpan.FromMilliseconds(50);

    private readonly WebApplication app;
    private readonly StandInCredentials credentials;
    private readonly StandInRecorder recorder;
    private readonly InFlightRequests inFlight;
    private readonly CancellationTokenSource stopping;
    private int disposed;

    private ThrivestackStandIn(
        WebApplication app,
        Uri endpoint,
        StandInCredentials credentials,
        StandInFaults faults,
        StandInRecorder recorder,
        InFlightRequests inFlight,
        CancellationTokenSource stopping)
    {
        this.app = app;
        Endpoint = endpoint;
        this.credentials = credentials;
        Faults = faults;
        this.recorder = recorder;
        this.inFlight = inFlight;
        this.stopping = stopping;
    }

    /// <summary>Gets the URL of the identify endpoint, e.g. <c>http://127.0.0.1:41234/api/identify</c>.</summary>
    public Uri Endpoint { get; }

    /// <summary>Gets or sets the token the stand-in accepts now; set it to simulate a token rotation. <see cref="Reset"/> keeps it.</summary>
    /// <exception cref="ArgumentNullException">The value is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException">The value is empty.</exception>
    public string ApiToken
    {
        get => credentials.Token;
        set => credentials.Token = value;
    }

    /// <summary>Gets the fault settings, applied to the requests that arrive after a change.</summary>
    public StandInFaults Faults { get; }

    /// <summary>Gets a copy of the accepted events, in the arrival order of their requests (empty when <see cref="ThrivestackStandInOptions.RecordEvents"/> is off).</summary>
    public IReadOnlyList<ReceivedIdentifyEvent> Events => recorder.Events();

    /// <summary>Gets a copy of every answered request, accepted or not, in arrival order.</summary>
    public IReadOnlyList<ReceivedRequest> Requests => recorder.Requests();

    /// <summary>Gets the number of events accepted since the start or the last <see cref="Reset"/>; it counts also when events are not recorded.</summary>
    public int AcceptedEventCount => recorder.AcceptedEventCount;

    /// <summary>Gets the number of requests accepted since the start or the last <see cref="Reset"/>.</summary>
    public int AcceptedRequestCount => recorder.AcceptedRequestCount;

    /// <summary>
    /// Gets the number of requests answered 429 since the start or the last <see cref="Reset"/>, whatever the cause:
    /// <see cref="StandInFaults.MaxConcurrentRequests"/>, <see cref="StandInFaults.TooManyRequestsRate"/> or
    /// <see cref="StandInFaults.FailNextRequests"/>.
    /// </summary>
    public int TooManyRequestsCount => recorder.TooManyRequestsCount;

    /// <summary>Gets the number of requests answered 429 by <see cref="StandInFaults.MaxConcurrentRequests"/> since the start or the last <see cref="Reset"/>.</summary>
    public int ConcurrencyLimitRefusedCount => inFlight.Refused;

    /// <summary>
    /// Gets the number of authorized requests being handled now: from the moment one passes authentication and the
    /// concurrency limit until its answer is decided (it includes <see cref="StandInFaults.Latency"/> and reading the body).
    /// </summary>
    public int InFlightRequestCount => inFlight.Current;

    /// <summary>
    /// Gets the largest <see cref="InFlightRequestCount"/> since the start or the last <see cref="Reset"/>: how many requests
    /// a client kept in flight at once.
    /// </summary>
    public int PeakConcurrentRequests => inFlight.Peak;

    /// <summary>Starts a stand-in on 127.0.0.1 on a free port.</summary>
    /// <param name="options">The options; <see langword="null"/> for the defaults.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The running stand-in; dispose it to stop the server.</returns>
    /// <exception cref="ArgumentException">
    /// <see cref="ThrivestackStandInOptions.ApiToken"/> is null or empty, <see cref="ThrivestackStandInOptions.AuthHeader"/> is not a
    /// defined value, or <see cref="ThrivestackStandInOptions.Path"/> does not start with <c>/</c> or holds a query or fragment.
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was canceled before the server started.</exception>
    public static async Task<ThrivestackStandIn> StartAsync(ThrivestackStandInOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ThrivestackStandInOptions();
        Validate(options);

        var credentials = new StandInCredentials(options.AuthHeader, options.ApiToken);
        var faults = new StandInFaults(options.Seed);
        var recorder = new StandInRecorder();
        var inFlight = new InFlightRequests(recorder.Signal);
        var stopping = new CancellationTokenSource();
        var endpoint = new IdentifyEndpoint(
            new PathString(options.Path), options.RecordEvents, credentials, faults, recorder, inFlight, options.TimeProvider, stopping.Token);
        var app = StandInHost.Build(endpoint.HandleAsync);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            stopping.Dispose();
            throw;
        }

        var url = new UriBuilder(StandInHost.Address(app)) { Path = options.Path }.Uri;
        return new ThrivestackStandIn(app, url, credentials, faults, recorder, inFlight, stopping);
    }

    /// <summary>Gets a copy of the accepted events of one user, in arrival order.</summary>
    /// <param name="userId">The <c>user_id</c> to look for (ordinal comparison).</param>
    /// <returns>The user's events; empty when there are none.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="userId"/> is <see langword="null"/>.</exception>
    public IReadOnlyList<ReceivedIdentifyEvent> EventsFor(string userId)
    {
        ArgumentNullException.ThrowIfNull(userId);
        return recorder.EventsFor(userId);
    }

    /// <summary>Waits until at least <paramref name="count"/> events have been accepted since the start or the last <see cref="Reset"/>.</summary>
    /// <param name="count">The number of accepted events to wait for.</param>
    /// <param name="timeout">How long to wait, or <see cref="Timeout.InfiniteTimeSpan"/>.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the events have arrived.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative, or <paramref name="timeout"/> is negative and not <see cref="Timeout.InfiniteTimeSpan"/>.</exception>
    /// <exception cref="TimeoutException">The deadline passed; the message says how many events arrived and which status codes were answered.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was canceled.</exception>
    public Task WaitForEventsAsync(int count, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return WaitAsync(
            standIn => standIn.AcceptedEventCount >= count,
            timeout,
            () => $"Waited {timeout} for {count} identify event(s) at {Endpoint}, but {AcceptedEventCount} arrived in "
                + $"{AcceptedRequestCount} accepted request(s); {recorder.DescribeRequests()}.",
            cancellationToken);
    }

    /// <summary>
    /// Waits until <paramref name="condition"/> holds; it is checked now, after every answered request, whenever a request
    /// enters or leaves <see cref="InFlightRequestCount"/>, and every 50 ms.
    /// </summary>
    /// <param name="condition">The condition over the stand-in, e.g. <c>s =&gt; s.Requests.Count &gt;= 3</c>.</param>
    /// <param name="timeout">How long to wait, or <see cref="Timeout.InfiniteTimeSpan"/>.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the condition holds.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="condition"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative and not <see cref="Timeout.InfiniteTimeSpan"/>.</exception>
    /// <exception cref="TimeoutException">The deadline passed; the message says what arrived.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was canceled.</exception>
    public Task WaitUntilAsync(Func<ThrivestackStandIn, bool> condition, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return WaitAsync(
            condition,
            timeout,
            () => $"The condition was not met within {timeout}: {AcceptedEventCount} identify event(s) arrived at {Endpoint} in "
                + $"{AcceptedRequestCount} accepted request(s); {recorder.DescribeRequests()}.",
            cancellationToken);
    }

    /// <summary>
    /// Clears the recorded events, requests and counters (also <see cref="PeakConcurrentRequests"/>,
    /// <see cref="TooManyRequestsCount"/> and <see cref="ConcurrencyLimitRefusedCount"/>) and restores every fault setting
    /// to its default. The token stays. Call it while no request is in flight.
    /// </summary>
    public void Reset()
    {
        Faults.Reset();
        recorder.Reset();
        inFlight.Reset();
    }

    /// <summary>Stops the server; requests still waiting on <see cref="StandInFaults.Latency"/> are aborted.</summary>
    /// <returns>A task that completes when the server has stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        await stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await app.StopAsync().ConfigureAwait(false);
        }
        finally
        {
            await app.DisposeAsync().ConfigureAwait(false);
            stopping.Dispose();
        }
    }

    private async Task WaitAsync(Func<ThrivestackStandIn, bool> condition, TimeSpan timeout, Func<string> describe, CancellationToken cancellationToken)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be zero or more, or Timeout.InfiniteTimeSpan.");
        }

        var started = TimeProvider.System.GetTimestamp();
        while (true)
        {
            // Taken before the check: a request recorded after the check completes this task.
            var changed = recorder.Changed;
            if (condition(this))
            {
                return;
            }

            var wait = RecheckInterval;
            if (timeout != Timeout.InfiniteTimeSpan)
            {
                var left = timeout - TimeProvider.System.GetElapsedTime(started);
                if (left <= TimeSpan.Zero)
                {
                    throw new TimeoutException(describe());
                }

                wait = left < wait ? left : wait;
            }

            await changed.WaitAsync(wait, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private static void Validate(ThrivestackStandInOptions options)
    {
        if (string.IsNullOrEmpty(options.ApiToken))
        {
            throw new ArgumentException("ThrivestackStandInOptions.ApiToken must be a non-empty token.", nameof(options));
        }

        if (!Enum.IsDefined(options.AuthHeader))
        {
            throw new ArgumentException($"ThrivestackStandInOptions.AuthHeader '{options.AuthHeader}' is not a StandInAuthHeader value: use StandInAuthHeader.Bearer or StandInAuthHeader.ApiKey.", nameof(options));
        }

        if (options.Path is not ['/', ..] || options.Path.AsSpan().IndexOfAny('?', '#') >= 0)
        {
            throw new ArgumentException(
                $"ThrivestackStandInOptions.Path '{options.Path}' must start with '/' and hold no query or fragment, e.g. '/api/identify'.", nameof(options));
        }
    }
}
