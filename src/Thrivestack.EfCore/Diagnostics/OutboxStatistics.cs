namespace Thrivestack.EfCore.Diagnostics;

/// <summary>A snapshot of one outbox: pending rows and the age of the oldest.</summary>
internal sealed record OutboxStatistics(long Pending, TimeSpan OldestPendingAge);
