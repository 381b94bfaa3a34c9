using Microsoft.Extensions.Logging;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>How loudly the start of a hold (an outage's backoff, a pause) is logged.</summary>
internal enum EpisodeStart
{
    /// <summary>The first hold in a while: its own warning or error.</summary>
    New,

    /// <summary>Began soon after the last hold of its kind ended: one warning or error says holds recur, the hold itself at Debug.</summary>
    FirstRecurrence,

    /// <summary>Holds keep recurring and that was said: Debug only.</summary>
    Quiet,
}

/// <summary>
/// Keeps a server that refuses a request now and then, while it takes the others, from logging a warning and "resumed"
/// every round. A hold of one kind that begins within <c>window</c> of the end of the last one recurs: the first
/// recurrence is said once, later ones and their ends are logged at Debug, until a hold begins after a whole window
/// without one. The dispatcher calls it under its state lock.
/// </summary>
internal sealed class EpisodeLog(TimeSpan window)
{
    private DateTimeOffset? lastEnded;
    private bool recurring;

    /// <summary>A hold of this kind begins now.</summary>
    public EpisodeStart Begin(DateTimeOffset now)
    {
        if (lastEnded is not { } ended || now - ended >= window)
        {
            recurring = false;
            return EpisodeStart.New;
        }

        if (recurring)
        {
            return EpisodeStart.Quiet;
        }

        recurring = true;
        return EpisodeStart.FirstRecurrence;
    }

    /// <summary>The hold ended now; the level its "resumed" line is logged at.</summary>
    public LogLevel End(DateTimeOffset now)
    {
        lastEnded = now;
        return recurring ? LogLevel.Debug : LogLevel.Information;
    }

    /// <summary>The level the hold's own line is logged at: <paramref name="level"/> for a new one, Debug for a recurrence.</summary>
    public static LogLevel LevelOf(EpisodeStart start, LogLevel level) => start == EpisodeStart.New ? level : LogLevel.Debug;
}
