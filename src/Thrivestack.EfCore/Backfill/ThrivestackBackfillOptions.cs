namespace Thrivestack.EfCore;

/// <summary>How <c>BackfillThrivestackAsync</c> walks the existing users and memberships.</summary>
public sealed class ThrivestackBackfillOptions
{
    /// <summary>
    /// The backfill's name: its checkpoint and its lock are kept under this name, so a run continues the last
    /// run of the same name. 1 to 200 characters, not starting with <c>(</c> (kept for the library's own rows of that
    /// table). The default value is <c>"default"</c>.
    /// </summary>
    public string Name { get; set; } = "default";

    /// <summary>
    /// The most rows read and enqueued per chunk, each chunk in its own short transaction. The backfill starts with
    /// chunks of 100 rows and sizes each next one from the last one's duration so that it holds its lock for about
    /// <see cref="TargetChunkDuration"/>: at least 100 rows (or this many when smaller), never more than this many. The default value is 500.
    /// </summary>
    public int ChunkSize { get; set; } = 500;

    /// <summary>
    /// How long each chunk's transaction should hold its write lock (on SQLite the database's single write lock, on
    /// PostgreSQL a lock that makes the application's outbox inserts wait). The application's saves wait at most about
    /// this long for a chunk, and after each chunk the backfill pauses as long as the chunk held the lock, so waiting
    /// saves get their turn. Smaller is kinder to the application, larger is faster. The default value is 2 milliseconds
    /// (measured with 300,000 users and the app saving 50 users a second: on SQLite the app's p99 during the backfill
    /// halved against 5 milliseconds, and on both providers the backfill took as long).
    /// </summary>
    public TimeSpan TargetChunkDuration { get; set; } = TimeSpan.FromMilliseconds(2);

    /// <summary>
    /// Before each chunk the backfill waits while more than this many events are pending in the outbox, so it
    /// never runs far ahead of delivery and live events are not queued behind the whole backfill. The default value is 10,000.
    /// </summary>
    public int MaxPendingEvents { get; set; } = 10_000;

    /// <summary>
    /// The longest wait between two checks of the pending count while the backfill waits for delivery: it checks
    /// again after a few milliseconds, then less and less often up to this interval. The default value is 1 second.
    /// </summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Starts over from the first user even when a run of this name completed or stopped half-way.
    /// The default value is <see langword="false"/>: continue from the checkpoint, and enqueue nothing after completion.
    /// </summary>
    public bool Restart { get; set; }

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name) || Name.Length > 200 || Name.StartsWith('('))
        {
            throw new ArgumentException($"ThrivestackBackfillOptions.Name must be 1 to 200 characters, not starting with '('; it is '{Name}'.", "options");
        }

        if (ChunkSize is < 1 or > 10_000)
        {
            throw new ArgumentOutOfRangeException("options", ChunkSize, "ThrivestackBackfillOptions.ChunkSize must be between 1 and 10,000.");
        }

        if (TargetChunkDuration <= TimeSpan.Zero || TargetChunkDuration > TimeSpan.FromMinutes(1))
        {
            throw new ArgumentOutOfRangeException("options", TargetChunkDuration, "ThrivestackBackfillOptions.TargetChunkDuration must be positive and at most 1 minute.");
        }

        if (MaxPendingEvents < 1)
        {
            throw new ArgumentOutOfRangeException("options", MaxPendingEvents, "ThrivestackBackfillOptions.MaxPendingEvents must be at least 1.");
        }

        if (PollInterval <= TimeSpan.Zero || PollInterval > TimeSpan.FromHours(1))
        {
            throw new ArgumentOutOfRangeException("options", PollInterval, "ThrivestackBackfillOptions.PollInterval must be positive and at most 1 hour.");
        }
    }
}
