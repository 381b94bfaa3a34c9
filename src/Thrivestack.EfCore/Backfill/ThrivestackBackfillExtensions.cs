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
