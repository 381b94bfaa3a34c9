namespace Thrivestack.EfCore;

/// <summary>Where a backfill stands, reported after every chunk.</summary>
public sealed class ThrivestackBackfillProgress
{
    /// <summary>The entity type being walked, such as <c>AppUser</c>.</summary>
    public string EntityType { get; init; } = "";

    /// <summary>Users read so far by this backfill name, earlier interrupted runs included.</summary>
    public long ProcessedUsers { get; init; }

    /// <summary>Memberships read so far by this backfill name, earlier interrupted runs included.</summary>
    public long ProcessedMemberships { get; init; }

    /// <summary>Users and memberships counted when the run started: an estimate, as the application adds and deletes rows meanwhile.</summary>
    public long EstimatedTotal { get; init; }

    /// <summary>Rows processed per second by this run (time spent waiting for delivery included).</summary>
    public double RowsPerSecond { get; init; }

    /// <summary>The time left at <see cref="RowsPerSecond"/>, or <see langword="null"/> before a rate is known.</summary>
    public TimeSpan? EstimatedRemaining { get; init; }

    /// <summary>Time since this run started.</summary>
    public TimeSpan Elapsed { get; init; }
}
