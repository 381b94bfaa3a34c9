namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// The in-process nudge from a commit to the dispatchers: rows written here start shipping at once,
/// polling only covers other processes and crashes. Also counts the app's saves in progress (those the interceptor
/// follows: with EF's automatic change detection, every save), so that a backfill's chunks on a single-writer database
/// (SQLite) let them go first (<see cref="AppSavesEndedAsync"/>).
/// Registered once per service provider.
/// </summary>
internal sealed class OutboxSignal
{
    /// <summary>
    /// The longest a backfill chunk waits for the app's saves in progress to end: a save holds SQLite's write lock for a
    /// millisecond or two, so this is many saves long, and an app that saves without pause still lets the backfill write
    /// every few tens of milliseconds. (The dispatcher's acknowledgements do not wait: measured, waiting cost an app that
    /// saves as fast as it can a sixth of its throughput, its rows staying in flight longer and its claims smaller.)
    /// </summary>
    public static readonly TimeSpan DefaultSaveYield = TimeSpan.FromMilliseconds(20);

    private readonly Lock gate = new();
    private TaskCompletionSource signal = NewSource();
    private long version;
    private int savesInProgress;
    private TaskCompletionSource? savesEnded;

    /// <summary>The longest wait of <see cref="AppSavesEndedAsync"/>; <see cref="DefaultSaveYield"/> unless a test sets it.</summary>
    internal TimeSpan SaveYield { get; set; } = DefaultSaveYield;

    /// <summary>Whether a backfill chunk began waiting for the app's saves in progress since the last ended (for tests).</summary>
    internal bool HasYieldWaiter => Volatile.Read(ref savesEnded) is not null;

    /// <summary>Counts nudges; a waiter compares versions, so a nudge between two waits is never missed.</summary>
    public long Version => Interlocked.Read(ref version);

    public void Notify()
    {
        TaskCompletionSource current;
        lock (gate)
        {
            version++;
            current = signal;
            signal = NewSource();
        }

        current.TrySetResult();
    }

    /// <summary>Completes when a nudge newer than <paramref name="seenVersion"/> arrives.</summary>
    public Task WaitAsync(long seenVersion)
    {
        lock (gate)
        {
            return version != seenVersion ? Task.CompletedTask : signal.Task;
        }
    }

    /// <summary>A save of the app began (it takes SQLite's write lock for its transaction).</summary>
    public void SaveStarted() => Interlocked.Increment(ref savesInProgress);

    /// <summary>A save counted by <see cref="SaveStarted"/> ended, committed or not.</summary>
    public void SaveEnded()
    {
        if (Interlocked.Decrement(ref savesInProgress) <= 0 && Volatile.Read(ref savesEnded) is not null)
        {
            Interlocked.Exchange(ref savesEnded, null)?.TrySetResult();
        }
    }

    /// <summary>The app's saves in progress (for tests).</summary>
    internal int SavesInProgress => Volatile.Read(ref savesInProgress);

    /// <summary>
    /// Completes once no save of the app is in progress, after <see cref="SaveYield"/> on <paramref name="time"/>, or once
    /// <paramref name="cancellationToken"/> is cancelled, whichever comes first; it never faults (nothing is left for
    /// <c>TaskScheduler.UnobservedTaskException</c>). A backfill's chunks on a database with one writer at a time go after
    /// the saves that are already waiting for it, rather than make them wait in SQLite's busy handler, whose sleeps grow
    /// (1, 2, 5, 10 ms, ...) each time it finds the lock taken again.
    /// </summary>
    public Task AppSavesEndedAsync(TimeProvider time, CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref savesInProgress) <= 0)
        {
            return Task.CompletedTask;
        }

        var ended = Volatile.Read(ref savesEnded);
        if (ended is null)
        {
            var created = NewSource();
            ended = Interlocked.CompareExchange(ref savesEnded, created, null) ?? created;
        }

        // A save that ended between the count and the publication of the source must not leave this waiting.
        if (Volatile.Read(ref savesInProgress) <= 0)
        {
            Interlocked.Exchange(ref savesEnded, null)?.TrySetResult();
            return Task.CompletedTask;
        }

        // WhenAny completes with whichever task ends first and throws nothing: neither a timeout nor a cancellation faults it.
        return Task.WhenAny(ended.Task, Task.Delay(SaveYield, time, cancellationToken));
    }

    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
