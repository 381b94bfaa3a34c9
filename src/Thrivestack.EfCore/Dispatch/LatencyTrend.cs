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

    /// <summary>Adds a sample; true when the recent average exceeds twice the fastest plus the allowance.</summary>
    public bool AddAndCheckSlow(TimeSpan elapsed)
    {
        recentTicks = recentTicks == 0 ? elapsed.Ticks : (RecentWeight * elapsed.Ticks) + ((1 - RecentWeight) * recentTicks);
        fastest = fastest == TimeSpan.MaxValue || elapsed < fastest * 1.005 ? elapsed : fastest * 1.005;
        return recentTicks > ((2 * fastest) + allowance).Ticks;
    }
}
