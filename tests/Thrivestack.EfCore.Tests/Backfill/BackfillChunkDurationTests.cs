namespace Thrivestack.EfCore.Tests.Backfill;

/// <summary>
/// Chunks aim at 2 ms of lock by default (README, "On SQLite the app's saves go first": half the app's p99 of 5 ms on
/// SQLite, the backfill as fast); on PostgreSQL a chunk still waits at least 5 ms for its lock before it is deferred
/// (the integration suite's PostgresChunkLockTimeoutTests).
/// </summary>
public sealed class BackfillChunkDurationTests
{
    [Fact]
    public void TargetChunkDuration_Default_IsTwoMilliseconds() =>
        Assert.Equal(TimeSpan.FromMilliseconds(2), new ThrivestackBackfillOptions().TargetChunkDuration);
}
