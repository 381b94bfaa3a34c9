using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Wakes the dispatcher (<see cref="Dispatch.OutboxSignal"/>) once rows are committed: at once when the save committed
/// them, else when the transaction that holds them commits; a rolled-back transaction's nudge is forgotten.
/// </summary>
internal static class CommitNudge
{
    /// <summary>Rows are committed already (explicit enqueue, requeue, backfill outside any save).</summary>
    public static void Now(DbContext context) => OptionsFacts.Of(context).Signal?.Notify();

    /// <summary>
    /// Rows went into the context's open transaction outside a save (explicit enqueue). Without the interceptor
    /// nothing sees the commit: nudge now. On SQLite the dispatcher's claim waits for the writer's commit; on
    /// PostgreSQL the uncommitted row is invisible to it and the event waits for the next poll (PollInterval).
    /// </summary>
    public static void OnCommit(DbContext context)
    {
        if (SaveState.Of(context) is { } state)
        {
            state.NudgeOnCommit = true;
        }
        else
        {
            Now(context);
        }
    }

    /// <summary>A save wrote rows: nudge now if they are committed, else when their transaction commits.</summary>
    public static void Saved(DbContext context, SaveState state)
    {
        // The transaction manager, not context.Database: the facade's dependencies are built on first use,
        // which cost a save that never touched it more than the rest of this method.
        if ((state.Transactions ??= context.GetService<IDbContextTransactionManager>()).CurrentTransaction is null)
        {
            state.Facts?.Signal?.Notify();
        }
        else
        {
            state.NudgeOnCommit = true;
        }
    }

    public static void Committed(DbContext? context)
    {
        if (context is not null && SaveState.Of(context) is { NudgeOnCommit: true } state)
        {
            state.NudgeOnCommit = false;
            OptionsFacts.Of(context, state).Signal?.Notify();
        }
    }

    public static void RolledBack(DbContext? context)
    {
        if (context is not null && SaveState.Of(context) is { } state)
        {
            state.NudgeOnCommit = false;
        }
    }
}
