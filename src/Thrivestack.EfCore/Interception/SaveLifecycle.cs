using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// The start and end of a save that captured something: a succeeded save detaches what it tracked and nudges; a
/// failed, cancelled or forgotten one detaches the rows it added, so a retry derives them afresh. Either way the
/// context gets back what the save changed on it and its <see cref="SaveState"/> is reset.
/// </summary>
internal static class SaveLifecycle
{
    /// <summary>
    /// Ends a save on the way EF reports every failure: its <c>SaveChangesFailed</c> event, raised also for a
    /// concurrency conflict, for which EF calls no interceptor (efcore#32750). Subscribed only during a save.
    /// </summary>
    private static readonly EventHandler<SaveChangesFailedEventArgs> OnSaveFailed = static (sender, _) => Abandon(sender as DbContext);

    /// <summary>The state of the context's save in progress; null when none is (or the context has no interceptor).</summary>
    public static SaveState? Active(DbContext context) => SaveState.Of(context) is { InProgress: true } state ? state : null;

    public static void Begin(DbContext context, SaveState state)
    {
        if (!state.InProgress)
        {
            state.InProgress = true;
            context.SaveChangesFailed += OnSaveFailed;
            if (OutboxDialect.For(context).BlocksOnAsync)
            {
                // One writer at a time (SQLite): a backfill's chunks let this save go first.
                state.CountSave(OptionsFacts.Of(context, state).Signal);
            }
        }
    }

    /// <summary>The save and its rows went through: nothing of ours stays tracked, and the dispatcher hears of the rows.</summary>
    public static void Complete(DbContext context, SaveState state)
    {
        if (!state.HasRows)
        {
            return;
        }

        foreach (var entry in state.Tracked)
        {
            entry.State = EntityState.Detached;
        }

        CommitNudge.Saved(context, state);
    }

    public static void End(DbContext context, SaveState state)
    {
        try
        {
            BatchWriterLock.Release(context, state);
        }
        finally
        {
            // First: a failure in what follows must not leave the save counted as in progress.
            state.EndCountedSave();
            context.SaveChangesFailed -= OnSaveFailed;
            ChangeDetectionPolicy.Release(context, state);
            CapturedRowWriter.Forget(context, state);
            state.Reset();
        }
    }

    public static void Abandon(DbContext? context)
    {
        if (context is null || Active(context) is not { } state)
        {
            return;
        }

        foreach (var entry in state.Tracked)
        {
            if (entry.Entity is OutboxMessage { Captured: true } && entry.State == EntityState.Added)
            {
                entry.State = EntityState.Detached;
            }
        }

        End(context, state);
    }
}
