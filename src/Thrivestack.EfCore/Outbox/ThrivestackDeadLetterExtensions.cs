using Thrivestack.EfCore;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Outbox;

namespace Microsoft.EntityFrameworkCore;

/// <summary>Lists, requeues and purges dead-lettered identify events of a context's outbox.</summary>
public static class ThrivestackDeadLetterExtensions
{
    /// <summary>Lists dead-lettered events, oldest first.</summary>
    /// <param name="context">The application's context.</param>
    /// <param name="take">How many to return at most. The default value is 100.</param>
    /// <param name="afterId">Returns events with a larger id, for paging.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The dead letters.</returns>
    public static async Task<IReadOnlyList<ThrivestackDeadLetter>> GetThrivestackDeadLettersAsync(
        this DbContext context,
        int take = 100,
        long afterId = 0,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(take);
        var rows = await DeadLetters(context).Where(r => r.Id > afterId).OrderBy(r => r.Id).Take(take)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        return rows.Select(r => new ThrivestackDeadLetter(
            r.Id,
            r.UserId,
            r.GroupId,
            r.Attempts,
            new DateTimeOffset(r.CreatedAt, TimeSpan.Zero),
            new DateTimeOffset(r.DeadLetteredAt ?? r.CreatedAt, TimeSpan.Zero),
            r.LastError ?? "",
            r.Payload)).ToArray();
    }

    /// <summary>
    /// Puts dead-lettered events back in line with fresh attempts (after fixing a token, a rejected trait or
    /// ThriveStack's side). They are sent again in their original order.
    /// </summary>
    /// <param name="context">The application's context.</param>
    /// <param name="ids">The events to requeue; <see langword="null"/> requeues every dead letter.</param>
    /// <param name="cancellationToken">Cancels the update.</param>
    /// <returns>How many events were requeued.</returns>
    public static async Task<int> RequeueThrivestackDeadLettersAsync(this DbContext context, IReadOnlyCollection<long>? ids = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var now = ThrivestackIdentifyInterceptor.Clock(context).GetUtcNow().UtcDateTime;
        var count = await Select(context, ids).ExecuteUpdateAsync(
            s => s.SetProperty(r => r.State, OutboxRowState.Pending)
                .SetProperty(r => r.Attempts, 0)
                .SetProperty(r => r.NextAttemptAt, now)
                .SetProperty(r => r.DeadLetteredAt, (DateTime?)null)
                .SetProperty(r => r.LeaseId, (Guid?)null)
                .SetProperty(r => r.LeaseExpiresAt, (DateTime?)null),
            cancellationToken).ConfigureAwait(false);
        if (count > 0)
        {
            ThrivestackIdentifyInterceptor.Nudge(context);
        }

        return count;
    }

    /// <summary>Deletes dead-lettered events for good.</summary>
    /// <param name="context">The application's context.</param>
    /// <param name="ids">The events to delete; <see langword="null"/> deletes every dead letter.</param>
    /// <param name="cancellationToken">Cancels the delete.</param>
    /// <returns>How many events were deleted.</returns>
    public static Task<int> PurgeThrivestackDeadLettersAsync(this DbContext context, IReadOnlyCollection<long>? ids = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Select(context, ids).ExecuteDeleteAsync(cancellationToken);
    }

    private static IQueryable<OutboxMessage> DeadLetters(DbContext context) =>
        context.Set<OutboxMessage>().AsNoTracking().Where(r => r.State == OutboxRowState.DeadLettered);

    private static IQueryable<OutboxMessage> Select(DbContext context, IReadOnlyCollection<long>? ids) =>
        ids is null ? DeadLetters(context) : DeadLetters(context).Where(r => ids.Contains(r.Id));
}
