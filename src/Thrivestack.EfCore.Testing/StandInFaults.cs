using Microsoft.AspNetCore.WebUtilities;
using Thrivestack.EfCore.Testing.Faults;

namespace Thrivestack.EfCore.Testing;

/// <summary>
/// Fault injection of a <see cref="ThrivestackStandIn"/>. Settings may be changed at any time, also while requests are in
/// flight; they apply to the requests that reach the fault step afterwards. After authentication, faults are applied in this
/// order: <see cref="MaxConcurrentRequests"/>, <see cref="Latency"/> (with <see cref="LatencyJitter"/>), <see cref="FailNextRequests"/>, <see cref="ServerErrorRate"/>,
/// <see cref="TooManyRequestsRate"/>, <see cref="SuccessFalse"/>; validation follows, then <see cref="RejectedUserIds"/>.
/// </summary>
public sealed class StandInFaults
{
    private const int DefaultFailStatusCode = 503;
    private const string SuccessFalseMessage = "The request could not be processed; try again later";

    private readonly Lock gate = new();
    private readonly Random random;
    private readonly ConcurrentStringList warnings = new();
    private double serverErrorRate;
    private double tooManyRequestsRate;
    private TimeSpan? retryAfter;
    private TimeSpan latency;
    private TimeSpan latencyJitter;
    private int? maxConcurrentRequests;
    private bool unauthorized;
    private int failNextRequests;
    private int failStatusCode = DefaultFailStatusCode;
    private bool successFalse;
    private bool eventIdResponse;
    private bool lastServerErrorWas500;

    internal StandInFaults(int? seed)
    {
        random = seed is int value ? new Random(value) : new Random();
    }

    /// <summary>
    /// Gets or sets the share (0 to 1) of requests answered with a server error; the answers alternate between 500 and 503,
    /// starting with 500. The default value is 0.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not between 0 and 1.</exception>
    public double ServerErrorRate
    {
        get { lock (gate) { return serverErrorRate; } }
        set { ThrowIfNotRate(value, nameof(ServerErrorRate)); lock (gate) { serverErrorRate = value; } }
    }

    /// <summary>Gets or sets the share (0 to 1) of requests answered 429 Too Many Requests. The default value is 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not between 0 and 1.</exception>
    public double TooManyRequestsRate
    {
        get { lock (gate) { return tooManyRequestsRate; } }
        set { ThrowIfNotRate(value, nameof(TooManyRequestsRate)); lock (gate) { tooManyRequestsRate = value; } }
    }

    /// <summary>
    /// Gets or sets the <c>Retry-After</c> that 429 and 503 answers carry, in whole seconds rounded up (so any positive value
    /// gives at least 1; zero gives 0). The default value is <see langword="null"/> (no header).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public TimeSpan? RetryAfter
    {
        get { lock (gate) { return retryAfter; } }
        set
        {
            if (value is TimeSpan given)
            {
                ArgumentOutOfRangeException.ThrowIfLessThan(given, TimeSpan.Zero, nameof(RetryAfter));
            }

            lock (gate) { retryAfter = value; }
        }
    }

    /// <summary>Gets or sets the delay before each authorized request is answered. The default value is zero.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public TimeSpan Latency
    {
        get { lock (gate) { return latency; } }
        set { ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero, nameof(Latency)); lock (gate) { latency = value; } }
    }

    /// <summary>
    /// Gets or sets the upper bound of a random extra delay, drawn per request between zero and this value and added to
    /// <see cref="Latency"/>, so that concurrent requests are answered in a random order. The draws come from the random
    /// numbers seeded with <see cref="ThrivestackStandInOptions.Seed"/>. The default value is zero.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public TimeSpan LatencyJitter
    {
        get { lock (gate) { return latencyJitter; } }
        set { ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero, nameof(LatencyJitter)); lock (gate) { latencyJitter = value; } }
    }

    /// <summary>
    /// Gets or sets how many authorized requests may be handled at once, as a gateway in front of the API limits them: a
    /// request that arrives while this many are in flight is answered 429 at once, without <c>Retry-After</c> (whatever
    /// <see cref="RetryAfter"/> says), and nothing of it is stored. The default value is <see langword="null"/> (no limit).
    /// </summary>
    /// <seealso cref="ThrivestackStandIn.PeakConcurrentRequests"/>
    /// <seealso cref="ThrivestackStandIn.ConcurrencyLimitRefusedCount"/>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public int? MaxConcurrentRequests
    {
        get { lock (gate) { return maxConcurrentRequests; } }
        set
        {
            if (value is int limit)
            {
                ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1, nameof(MaxConcurrentRequests));
            }

            lock (gate) { maxConcurrentRequests = value; }
        }
    }

    /// <summary>Gets or sets a value indicating whether every request is answered 401, whatever its token (a 401 window). The default value is <see langword="false"/>.</summary>
    public bool Unauthorized
    {
        get { lock (gate) { return unauthorized; } }
        set { lock (gate) { unauthorized = value; } }
    }

    /// <summary>Gets or sets how many of the next authorized requests are answered with <see cref="FailStatusCode"/>; it counts down per request. The default value is 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public int FailNextRequests
    {
        get { lock (gate) { return failNextRequests; } }
        set { ArgumentOutOfRangeException.ThrowIfNegative(value, nameof(FailNextRequests)); lock (gate) { failNextRequests = value; } }
    }

    /// <summary>Gets or sets the status code (400 to 599) of the answers that <see cref="FailNextRequests"/> causes. The default value is 503.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not between 400 and 599.</exception>
    public int FailStatusCode
    {
        get { lock (gate) { return failStatusCode; } }
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 400, nameof(FailStatusCode));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 599, nameof(FailStatusCode));
            lock (gate) { failStatusCode = value; }
        }
    }

    /// <summary>
    /// Gets or sets a value indicating whether requests are answered 200 with <c>{"success":false,...}</c> and not stored,
    /// a failure the client must treat as transient. The default value is <see langword="false"/>.
    /// </summary>
    public bool SuccessFalse
    {
        get { lock (gate) { return successFalse; } }
        set { lock (gate) { successFalse = value; } }
    }

    /// <summary>
    /// Gets the user ids (ordinal, thread-safe) whose requests are rejected: a valid request that contains any of them is
    /// answered 400 naming the first one, and none of its events is stored, as the real API rejects whole requests.
    /// </summary>
    public ISet<string> RejectedUserIds { get; } = new ConcurrentStringSet();

    /// <summary>
    /// Gets or sets a value indicating whether accepted requests are answered with ThriveStack's newer shape
    /// <c>{"success":true,"eventId":"...","warnings":[...]}</c> instead of <c>{"success":true,"response_id":"...","message":"..."}</c>.
    /// The default value is <see langword="false"/>.
    /// </summary>
    public bool EventIdResponse
    {
        get { lock (gate) { return eventIdResponse; } }
        set { lock (gate) { eventIdResponse = value; } }
    }

    /// <summary>Gets the warnings (thread-safe) that answers in the <see cref="EventIdResponse"/> shape carry.</summary>
    public IList<string> Warnings => warnings;

    /// <summary>Decides the fault for one authorized request, counting down <see cref="FailNextRequests"/>; <see langword="null"/> means none.</summary>
    internal InjectedFault? NextFault()
    {
        lock (gate)
        {
            if (failNextRequests > 0)
            {
                failNextRequests--;
                return Fault(failStatusCode);
            }

            if (serverErrorRate > 0 && random.NextDouble() < serverErrorRate)
            {
                lastServerErrorWas500 = !lastServerErrorWas500;
                return Fault(lastServerErrorWas500 ? 500 : 503);
            }

            if (tooManyRequestsRate > 0 && random.NextDouble() < tooManyRequestsRate)
            {
                return Fault(429);
            }

            return successFalse ? new InjectedFault(200, SuccessFalseMessage, null) : null;
        }
    }

    /// <summary>Decides the delay of one authorized request: <see cref="Latency"/> plus a draw of <see cref="LatencyJitter"/>.</summary>
    internal TimeSpan NextLatency()
    {
        lock (gate)
        {
            return latencyJitter <= TimeSpan.Zero ? latency : latency + TimeSpan.FromTicks(random.NextInt64(latencyJitter.Ticks + 1));
        }
    }

    internal IReadOnlyList<string> WarningsSnapshot() => warnings.Snapshot();

    /// <summary>Restores every setting to its default.</summary>
    internal void Reset()
    {
        lock (gate)
        {
            serverErrorRate = 0;
            tooManyRequestsRate = 0;
            retryAfter = null;
            latency = TimeSpan.Zero;
            latencyJitter = TimeSpan.Zero;
            maxConcurrentRequests = null;
            unauthorized = false;
            failNextRequests = 0;
            failStatusCode = DefaultFailStatusCode;
            successFalse = false;
            eventIdResponse = false;
            lastServerErrorWas500 = false;
        }

        RejectedUserIds.Clear();
        Warnings.Clear();
    }

    private InjectedFault Fault(int statusCode)
    {
        var reason = ReasonPhrases.GetReasonPhrase(statusCode);
        var retryAfter = statusCode is 429 or 503 ? this.retryAfter : null;
        return new InjectedFault(statusCode, reason.Length > 0 ? reason : "Injected failure", retryAfter);
    }

    private static void ThrowIfNotRate(double value, string name)
    {
        if (double.IsNaN(value) || value < 0 || value > 1)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be between 0 and 1.");
        }
    }
}
