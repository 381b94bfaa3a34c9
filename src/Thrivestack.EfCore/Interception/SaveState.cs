using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Thrivestack.EfCore.Dispatch;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// What one context's save in progress needs between the interceptor's callbacks. Kept beside the context
/// (not in the shared interceptor), so pooled and concurrent contexts never see each other's state.
/// </summary>
internal sealed class SaveState
{
    public bool InProgress { get; set; }

    /// <summary>Outbox entities saved by EF's own batch; detached once the save succeeded.</summary>
    public List<EntityEntry> Tracked { get; } = [];

    /// <summary>The dispatchers' nudge of the application's services, found once per save (or none).</summary>
    public OutboxSignal? Signal { get; set; }

    /// <summary>Events whose ids are store-generated: written once the database has assigned the keys.</summary>
    public List<Capture>? Deferred { get; set; }

    public DeferredWrite Mode { get; set; }

    public DateTime Timestamp { get; set; }

    public AutoTransactionBehavior? PreviousBehavior { get; set; }

    /// <summary>Rows went into a transaction that is still open: nudge the dispatcher when it commits.</summary>
    public bool NudgeOnCommit { get; set; }

    public void Reset()
    {
        InProgress = false;
        Tracked.Clear();
        Deferred = null;
        Mode = DeferredWrite.None;
        PreviousBehavior = null;
        Signal = null;
    }
}
