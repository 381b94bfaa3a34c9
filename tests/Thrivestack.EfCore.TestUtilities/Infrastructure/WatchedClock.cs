using Microsoft.Extensions.Time.Testing;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that also reports every wait started on it (a timer with a finite due time).
/// A test advances time only once the dispatcher is parked on its next wait, so an advance is never lost
/// to a timer created a moment later.
/// </summary>
internal sealed class WatchedClock(DateTimeOffset start) : FakeTimeProvider(start)
{
    private readonly Lock gate = new();
    private readonly List<TimeSpan> waits = [];
    private TaskCompletionSource changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Starts at the current UTC time, so rows written on the system clock just before are already due.</summary>
    public WatchedClock()
        : this(DateTimeOffset.UtcNow)
    {
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        if (dueTime != Timeout.InfiniteTimeSpan)
        {
            TaskCompletionSource previous;
            lock (gate)
            {
                waits.Add(dueTime);
                previous = changed;
                changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            previous.TrySetResult();
        }

        return timer;
    }

    /// <summary>How many waits whose due time matches <paramref name="match"/> have started.</summary>
    public int CountWaits(Func<TimeSpan, bool> match)
    {
        lock (gate)
        {
            return waits.Count(match);
        }
    }

    /// <summary>Waits until <paramref name="count"/> waits whose due time matches <paramref name="match"/> have started.</summary>
    public async Task WaitForWaitsAsync(int count, Func<TimeSpan, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            Task next;
            int seen;
            lock (gate)
            {
                seen = waits.Count(match);
                next = changed.Task;
            }

            if (seen >= count)
            {
                return;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"Expected {count} matching waits on the fake clock, saw {seen}: {Describe()}.");
            }

            await next.WaitAsync(left).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>How many waits have started, the due time of the latest, and a task that completes when the next one starts.</summary>
    public (int Started, TimeSpan LatestDue, Task NextStart) LatestWait()
    {
        lock (gate)
        {
            return (waits.Count, waits.Count > 0 ? waits[^1] : TimeSpan.Zero, changed.Task);
        }
    }

    /// <summary>
    /// Advances by <paramref name="step"/> whenever a wait has started since the last advance, until <paramref name="stop"/>
    /// is cancelled: drives a dispatcher whose every backoff and poll is at most <paramref name="step"/> without real delays.
    /// </summary>
    public async Task AdvanceOnEveryWaitAsync(TimeSpan step, CancellationToken stop)
    {
        var advancedAt = 0;
        while (!stop.IsCancellationRequested)
        {
            Task next;
            int started;
            lock (gate)
            {
                started = waits.Count;
                next = changed.Task;
            }

            if (started > advancedAt)
            {
                advancedAt = started;
                Advance(step);
                continue;
            }

            await next.WaitAsync(stop).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private string Describe()
    {
        lock (gate)
        {
            return string.Join(", ", waits);
        }
    }
}
