namespace Thrivestack.EfCore;

/// <summary>What one run of <c>BackfillThrivestackAsync</c> did.</summary>
public sealed class ThrivestackBackfillResult
{
    /// <summary>User events this run wrote to the outbox.</summary>
    public long UsersEnqueued { get; init; }

    /// <summary>Membership events (with <c>context.group_id</c>) this run wrote to the outbox.</summary>
    public long MembershipsEnqueued { get; init; }

    /// <summary>True when every mapped user and membership type has been walked to its end (by this run or an earlier one).</summary>
    public bool Completed { get; init; }

    /// <summary>True when the run continued from a checkpoint left by an earlier run of the same name.</summary>
    public bool ResumedFromCheckpoint { get; init; }

    /// <summary>How long this run took.</summary>
    public TimeSpan Elapsed { get; init; }
}
