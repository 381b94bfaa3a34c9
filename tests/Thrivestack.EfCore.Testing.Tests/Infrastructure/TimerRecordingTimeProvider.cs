using Microsoft.Extensions.Time.Testing;

namespace Thrivestack.EfCore.Testing.Tests.Infrastructure;

/// <summary>A fake clock that records the due time of every timer created on it (each <c>Task.Delay</c> of the stand-in).</summary>
internal sealed class TimerRecordingTimeProvider : FakeTimeProvider
{
    private readonly Lock gate = new();
    private readonly List<TimeSpan> dueTimes = [];

    public IReadOnlyList<TimeSpan> DueTimes { get { lock (gate) { return [.. dueTimes]; } } }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        lock (gate)
        {
            dueTimes.Add(dueTime);
        }

        return timer;
    }
}
