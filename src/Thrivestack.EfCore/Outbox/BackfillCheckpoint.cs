namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// One row of <c>thrivestack_backfill</c>: per backfill name, a run row (<see cref="RunEntity"/>) that holds the
/// lock, and one row per entity type with the keyset position reached. Updated in each chunk's transaction.
/// </summary>
internal sealed class BackfillCheckpoint
{
    /// <summary>The <see cref="Entity"/> of the row that holds a name's lock and run times.</summary>
    public const string RunEntity = "(run)";

    public string Name { get; set; } = "";

    public string Entity { get; set; } = "";

    /// <summary>The primary key of the last row enqueued, as a JSON array of invariant strings; null before the first chunk.</summary>
    public string? LastKey { get; set; }

    public long Processed { get; set; }

    public long Enqueued { get; set; }

    public DateTime? StartedAt { get; set; }

    public DateTime? CompletedAt { get; set; }

    public DateTime UpdatedAt { get; set; }

    public string? LockOwner { get; set; }

    public DateTime? LockExpiresAt { get; set; }
}
