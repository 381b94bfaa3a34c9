using Thrivestack.EfCore;
using Thrivestack.EfCore.Backfill;

namespace Microsoft.EntityFrameworkCore;

/// <summary>Identifies the users and memberships that existed before the interceptor was added.</summary>
public static class ThrivestackBackfillExtensions
{
    /// <summary>
    /// Enqueues one identify event per existing mapped user (with every mapped trait) and one per existing
    /// membership (<c>context.group_id</c>), through the outbox and the dispatcher, while the application keeps
    /// running. Works in chunks of short transactions, keeps a checkpoint under <see cref="ThrivestackBackfillOptions.Name"/>
    /// (run it again after a crash or a cancellation and it continues; after completion it enqueues nothing unless
    /// <see cref="ThrivestackBackfillOptions.Restart"/> is set), waits while the outbox's backlog is above
    /// <see cref="ThrivestackBackfillOptions.MaxPendingEvents"/>, and never lets an event overwrite newer traits
    /// of a user edited meanwhile. One run per name at a time: a second run throws <see cref="InvalidOperationException"/>.
    /// </summary>
    /// <param name="context">A new context of the application (no tracked entities, no open transaction); its model must include <c>AddThrivestackOutbox()</c>.</param>
    /// <param name="options">Chunk size, backlog limit, name and restart; defaults when <see langword="null"/>.</param>
    /// <param name="progress">Told after every chunk where the backfill stands.</param>
    /// <param name="cancellationToken">Stops the backfill between or inside a chunk (the chunk in flight rolls back) with an <see cref="OperationCanceledException"/>.</param>
    /// <returns>What this run enqueued, and whether the backfill is complete.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><see cref="ThrivestackBackfillOptions.Name"/> is empty, white space or longer than 200 characters.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Another option of <paramref name="options"/> is out of its range.</exception>
    /// <exception cref="InvalidOperationException">
    /// The context has an open transaction or tracks entities; its model has no outbox, or a mapped entity type has no
    /// primary key, a key of an unsupported type or no table; the outbox table or the <c>thrivestack_backfill</c> table was
    /// never created in the database (the message says how to create it); another run of the same name holds the lock, or this run
    /// lost it; or the checkpoint no longer fits the entity type's key (run with <see cref="ThrivestackBackfillOptions.Restart"/>).
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was canceled.</exception>
    public static Task<ThrivestackBackfillResult> BackfillThrivestackAsync(
        this DbContext context,
        ThrivestackBackfillOptions? options = null,
        IProgress<ThrivestackBackfillProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        options ??= new ThrivestackBackfillOptions();
        options.Validate();
        return BackfillRunner.RunAsync(context, options, progress, cancellationToken);
    }
}
