namespace Thrivestack.EfCore;

/// <summary>A snapshot of a context's identify outbox, read with <c>GetThrivestackOutboxStateAsync</c>.</summary>
public sealed class ThrivestackOutboxState
{
    /// <summary>Events waiting to be delivered (including those in flight or waiting for a retry).</summary>
    public long Pending { get; init; }

    /// <summary>How long the oldest pending event has waited; zero when nothing is pending.</summary>
    public TimeSpan OldestPendingAge { get; init; }

    /// <summary>Delivered events still kept (only with <see cref="ThrivestackOptions.DeliveredRetention"/> above zero).</summary>
    public long Delivered { get; init; }

    /// <summary>Events that can never be delivered as they are; see <c>GetThrivestackDeadLettersAsync</c>.</summary>
    public long DeadLettered { get; init; }
}
