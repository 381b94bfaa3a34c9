namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// The in-process nudge from a commit to the dispatchers: rows written here start shipping at once,
/// polling only covers other processes and crashes. Registered once per service provider.
/// </summary>
internal sealed class OutboxSignal
{
    private readonly Lock gate = new();
    private TaskCompletionSource signal = NewSource();
    private long version;

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

    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
