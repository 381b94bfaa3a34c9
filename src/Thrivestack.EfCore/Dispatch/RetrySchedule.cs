namespace Thrivestack.EfCore.Dispatch;

/// <summary>Exponential backoff with jitter: base x 2^(n-1), capped, then a random point in its upper half.</summary>
internal static class RetrySchedule
{
    /// <summary>
    /// The wait before attempt <paramref name="attempt"/> + 1. A server's <paramref name="retryAfter"/> wins over a shorter
    /// backoff but never over <paramref name="maxDelay"/>: a Retry-After of years would otherwise stop the dispatcher
    /// (Task.Delay throws above ~49.7 days) or hold a row for as long.
    /// </summary>
    public static TimeSpan Delay(int attempt, TimeSpan baseDelay, TimeSpan maxDelay, TimeSpan? retryAfter = null)
    {
        var exponent = Math.Clamp(attempt - 1, 0, 30);
        var ceiling = Math.Min(maxDelay.Ticks, baseDelay.Ticks * Math.Pow(2, exponent));
#pragma warning disable RS0030 // The library's one source of randomness: the jitter that spreads retries of many rows and instances.
        var jittered = TimeSpan.FromTicks((long)(ceiling / 2 + (Random.Shared.NextDouble() * ceiling / 2)));
#pragma warning restore RS0030
        return retryAfter is { } wait && wait > jittered ? (wait < maxDelay ? wait : maxDelay) : jittered;
    }
}
