namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// Whether durations of one kind (request round trips, claim statements) are growing: a moving average of recent ones
/// against the fastest seen. The fastest ages by 0.5 % per sample, so one early fast sample (a warm loopback, a cache)
/// cannot make every later normal one look slow for good, and a duration that grows for good becomes the new normal
/// within about fifty samples. Not thread-safe: the owner serialises calls.
/// </summary>
internal sealed class LatencyTrend(TimeSpan allowance)
{
    // Weight of the newest sample in the moving average: one slow sample of a busy machine barely moves it.
    private const double RecentWeight = 0.2;

    private TimeSpan fastest = TimeSpan.MaxValue;
    private double recentTicks;

    /// <summary>The moving average of recent samples; zero before the first.</summary>
    public TimeSpan Recent => TimeSpan.FromTicks((long)recentTicks);

    /// <summary>
    /// Adds a sample; true when both the recent average and this sample exceed twice the fastest plus the allowance. The
    /// sample must be slow too: after one slow first sample (a process's first claim pays for JIT, its first request for
    /// the connection and TLS handshake), fast ones would otherwise read as slow until the average forgets it.
    /// </summary>
    public bool AddAndCheckSlow(TimeSpan elapsed)
    {
        recentTicks = recentTicks == 0 ? elapsed.Ticks : (RecentWeight * elapsed.Ticks) + ((1 - RecentWeight) * recentTicks);
        fastest = fastest == TimeSpan.MaxValue || elapsed < fastest * 1.005 ? elapsed : fastest * 1.005;
        var slow = ((2 * fastest) + allowance).Ticks;
        return recentTicks > slow && elapsed.Ticks > slow;
    }
}
