namespace Thrivestack.EfCore.Backfill;

/// <summary>
/// Picks the next chunk's size from how long the last chunk held its write lock, so each chunk holds it for about
/// the target: the application's saves then wait at most that long, on a fast disk or a slow one. Shrinks at once,
/// grows at most twice per chunk (one slow chunk, such as a GC pause, should not be followed by a huge one).
/// </summary>
internal sealed class BackfillChunkSizer
{
    /// <summary>
    /// Below this many rows the fixed cost of a chunk (its round trips and commit) dominates its lock time: fewer rows
    /// would hardly shorten the application's waits but would multiply the chunks (PostgreSQL under load fell to a few
    /// hundred rows per second with 20-row chunks).
    /// </summary>
    public const int MinimumSize = 100;

    /// <summary>The first chunk's size: the smallest, so the first measurement never blocks the application long.</summary>
    public const int InitialSize = MinimumSize;

    private readonly double targetSeconds;

    public BackfillChunkSizer(int maximum, TimeSpan target)
    {
        Maximum = maximum;
        Minimum = Math.Min(maximum, MinimumSize);
        targetSeconds = target.TotalSeconds;
        Current = Math.Min(maximum, InitialSize);
    }

    public int Minimum { get; }

    public int Maximum { get; }

    /// <summary>The size of the next chunk.</summary>
    public int Current { get; private set; }

    /// <summary>Takes the measurement of a chunk of <paramref name="rows"/> rows that held the lock for <paramref name="held"/>.</summary>
    public void Record(int rows, TimeSpan held)
    {
        if (rows <= 0)
        {
            return;
        }

        double next;
        if (held <= TimeSpan.Zero)
        {
            next = 2.0 * Current;
        }
        else
        {
            var perRow = held.TotalSeconds / rows;
            next = Math.Min(targetSeconds / perRow, 2.0 * Current);
        }

        Current = (int)Math.Clamp(Math.Round(next), Minimum, Maximum);
    }
}
