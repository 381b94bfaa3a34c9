namespace Thrivestack.EfCore.Telemetry;

/// <summary>A snapshot of one outbox: pending rows and the age of the oldest.</summary>
internal sealed record OutboxStatistics(long Pending, TimeSpan OldestPendingAge)
{
    /// <summary>The age of the oldest pending row at <paramref name="now"/>; zero when none is pending or its time is ahead.</summary>
    public static TimeSpan AgeOf(DateTime? oldestCreatedAt, DateTime now) =>
        oldestCreatedAt is { } oldest && now > oldest ? now - oldest : TimeSpan.Zero;
}
