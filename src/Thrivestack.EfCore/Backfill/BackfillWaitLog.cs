using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Backfill;

/// <summary>
/// What one wait for room in the outbox says, so a backfill whose outbox no dispatcher drains does not wait in silence:
/// a Debug line when the wait begins, then a line every <see cref="Interval"/> of waiting with the pending count, at
/// Information, or at Warning (then once per <see cref="StalledAfter"/>) once the count has not gone down for that long.
/// </summary>
internal sealed class BackfillWaitLog
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);

    public static readonly TimeSpan StalledAfter = TimeSpan.FromMinutes(1);

    private readonly ILogger logger;
    private readonly TimeProvider clock;
    private readonly string name;
    private readonly string context;
    private readonly int limit;
    private readonly long started;
    private TimeSpan nextLine = Interval;
    private long lowest = long.MaxValue;
    private long loweredAt;

    private BackfillWaitLog(ILogger logger, TimeProvider clock, string name, string context, int limit)
    {
        this.logger = logger;
        this.clock = clock;
        this.name = name;
        this.context = context;
        this.limit = limit;
        started = clock.GetTimestamp();
    }

    /// <summary>Whether a line with the pending count is due (it costs a count of every pending row, not only up to the limit).</summary>
    public bool Due => clock.GetElapsedTime(started) >= nextLine;

    public static BackfillWaitLog Begin(ILogger logger, TimeProvider clock, string name, string context, int limit)
    {
        Log.BackfillWaiting(logger, name, limit);
        return new BackfillWaitLog(logger, clock, name, context, limit);
    }

    public void Still(long pending)
    {
        var now = clock.GetTimestamp();
        var waited = clock.GetElapsedTime(started, now);
        if (pending < lowest)
        {
            // A new low: something drains the outbox. The first count stands for the backlog the wait began with (it was
            // not counted then), so a backlog that never goes down is a stall a minute into the wait, not a minute after
            // the first count.
            loweredAt = lowest == long.MaxValue ? started : now;
            lowest = pending;
        }

        var flat = clock.GetElapsedTime(loweredAt, now);

        // Once stalled, a line a minute: a backfill left waiting for a dispatcher that never runs says so 60 times an hour,
        // not 240.
        nextLine = waited + (flat >= StalledAfter ? StalledAfter : Interval);
        if (flat >= StalledAfter)
        {
            Log.BackfillStalled(logger, name, HumanDuration.Format(waited), HumanDuration.Format(flat), pending, context, limit);
        }
        else
        {
            Log.BackfillStillWaiting(logger, name, HumanDuration.Format(waited), pending, context, limit);
        }
    }
}
