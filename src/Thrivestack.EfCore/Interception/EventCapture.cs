using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Turns a save's tracked changes into identify events: one scan of the entries (changes already detected), the rows
/// of new users with client-generated keys built at once; those of store-generated keys, and those of users the context
/// loaded (their traits are read back from the row, <see cref="TraitReadBack"/>), kept for <see cref="CapturedRowWriter"/>.
/// </summary>
internal static class EventCapture
{
    /// <summary>
    /// Scans the tracked entries, detaches rows a failed or earlier pass left behind, builds this save's outbox rows
    /// (or defers those whose ids the database has yet to assign) and has the writer choose where they go.
    /// </summary>
    public static void Record(DbContext context, SaveState state, ModelMap map, OptionsFacts facts)
    {
        var scanner = new ChangeScanner(map, OutboxDialect.For(context).AppendsToSaveCommand);
        scanner.Scan(context.ChangeTracker);
        foreach (var leftover in scanner.Leftovers)
        {
            leftover.State = EntityState.Detached;
        }

        var captures = scanner.Captures();
        if (captures.Count == 0 && scanner.ManualRows.Count == 0)
        {
            return;
        }

        SaveLifecycle.Begin(context, state);
        state.HasRows = true;
        facts.WarnIfUndispatched();
        state.Timestamp = facts.Clock.GetUtcNow().UtcDateTime;
        state.Tracked.AddRange(scanner.ManualRows);
        foreach (var capture in captures)
        {
            if (TraitReadBack.Applies(capture.User, capture.UserMap))
            {
                // A user this context loaded: its traits are read back from the row inside the transaction, once EF's
                // commands ran, as another context may have changed the ones this one did not.
                (state.Deferred ??= []).Add(capture with { ReadBack = true });
            }
            else if (capture.HasTemporaryId)
            {
                (state.Deferred ??= []).Add(capture);
            }
            else if (capture.ToMessage(state.Timestamp) is { } message)
            {
                (state.Rows ??= new List<OutboxMessage>(captures.Count)).Add(message);
            }
        }

        if (state.Deferred is not null || state.Rows is not null)
        {
            CapturedRowWriter.Choose(context, state, scanner.OnlyInserts);
        }
    }

    /// <summary>Forgets what an earlier pass of this save captured; its rows are detached by the next scan.</summary>
    public static void Uncapture(DbContext context, SaveState state)
    {
        state.HasRows = false;
        state.Tracked.Clear();
        CapturedRowWriter.Forget(context, state);
    }
}
