using Microsoft.Extensions.Logging;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>How loudly the start of a hold (an outage's backoff, a pause) is logged.</summary>
internal enum EpisodeStart
{
    /// <summary>The first hold in a while: its own warning or error.</summary>
    New,

    /// <summary>Holds recur (it began soon after the last one ended): one warning or error says so, the hold itself at Debug.</summary>
    Announce,

    /// <summary>Holds keep recurring and that was said within the hour: Debug only.</summary>
    Quiet,
}

/// <summary>
/// Keeps a server that refuses a request now and then, while it takes the others, from logging a warning and "resumed"
/// every round. A hold of one kind that begins within <see cref="Window"/> of the end of the last one recurs: that is
/// said once, and again each hour while holds go on recurring; the holds themselves and their ends are logged at Debug
/// until one begins after a whole window without one. A recurring hold that lasts a whole window (nothing sent after it
/// went through: an outage, a revoked token) is news again: <see cref="Persists"/>; the run of recurrences goes on. The
/// dispatcher calls it under its state lock.
/// </summary>
internal sealed class EpisodeLog(TimeSpan window)
{
    /// <summary>How soon after the last hold's end a new one counts as recurring: 10 minutes.</summary>
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromMinutes(10);

    /// <summary>While holds recur, how often that is said again (with their count).</summary>
    public static readonly TimeSpan AnnounceEvery = TimeSpan.FromHours(1);

    private DateTimeOffset? lastEnded;
    private DateTimeOffset announcedAt;
    private DateTimeOffset holdBegan;

    // A run of recurrences is on (holds begin within the window of the last one's end).
    private bool recurring;

    // The hold now on is logged at Debug (it began as a recurrence and has not lasted a window).
    private bool quiet;

    public EpisodeLog()
        : this(DefaultWindow)
    {
    }

    public TimeSpan Window => window;

    /// <summary>Holds that recurred since <see cref="RecurringSince"/> (this run of recurrences), this one included.</summary>
    public int Recurrences { get; private set; }

    /// <summary>When the first hold of this run of recurrences began.</summary>
    public DateTimeOffset RecurringSince { get; private set; }

    /// <summary>A hold of this kind begins now.</summary>
    public EpisodeStart Begin(DateTimeOffset now)
    {
        holdBegan = now;
        if (lastEnded is not { } ended || now - ended >= window)
        {
            recurring = quiet = false;
            return EpisodeStart.New;
        }

        quiet = true;
        if (!recurring)
        {
            recurring = true;
            Recurrences = 1;
            RecurringSince = now;
            announcedAt = now;
            return EpisodeStart.Announce;
        }

        Recurrences++;
        if (now - announcedAt >= AnnounceEvery)
        {
            announcedAt = now;
            return EpisodeStart.Announce;
        }

        return EpisodeStart.Quiet;
    }

    /// <summary>
    /// The hold takes another step: true, once, when it began as a recurrence and has lasted a whole window (a refusal now
    /// and then ends sooner). Its line is then logged at its own level, and its end at Information.
    /// </summary>
    public bool Persists(DateTimeOffset now)
    {
        if (!quiet || now - holdBegan < window)
        {
            return false;
        }

        quiet = false;
        return true;
    }

    /// <summary>The hold ended now; the level its "resumed" line is logged at.</summary>
    public LogLevel End(DateTimeOffset now)
    {
        lastEnded = now;
        return quiet ? LogLevel.Debug : LogLevel.Information;
    }

    /// <summary>The level the hold's own line is logged at: <paramref name="level"/> for a new one, Debug for a recurrence.</summary>
    public static LogLevel LevelOf(EpisodeStart start, LogLevel level) => start == EpisodeStart.New ? level : LogLevel.Debug;

    /// <summary>The louder of two levels, <see cref="LogLevel.None"/> standing for no line.</summary>
    public static LogLevel Louder(LogLevel a, LogLevel b) =>
        a == LogLevel.None ? b : b == LogLevel.None ? a : (LogLevel)Math.Max((int)a, (int)b);
}
