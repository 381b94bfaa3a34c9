using System.Data.Common;
using Thrivestack.EfCore;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Telemetry;

namespace Microsoft.EntityFrameworkCore;

/// <summary>Reads a context's identify outbox, and lists, requeues and purges its dead-lettered events.</summary>
public static class ThrivestackDeadLetterExtensions
{
    /// <summary>Counts the outbox's events by state and finds the age of the oldest pending one, in one query.</summary>
    /// <param name="context">The application's context.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The outbox's state now.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">The model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing), or its table was never created in the database (the message says how to create it).</exception>
    public static async Task<ThrivestackOutboxState> GetThrivestackOutboxStateAsync(this DbContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var groups = await NamingAMissingTableAsync(
            context,
            nameof(GetThrivestackOutboxStateAsync),
            () => context.Set<OutboxMessage>().AsNoTracking()
                .GroupBy(r => r.State)
                .Select(g => new { State = g.Key, Count = g.LongCount(), Oldest = g.Min(r => r.CreatedAt) })
                .ToListAsync(cancellationToken)).ConfigureAwait(false);
        var pending = groups.Find(g => g.State == OutboxRowState.Pending);
        var now = OptionsFacts.Of(context).Clock.GetUtcNow().UtcDateTime;
        return new ThrivestackOutboxState
        {
            Pending = pending?.Count ?? 0,
            OldestPendingAge = OutboxStatistics.AgeOf(pending?.Oldest, now),
            Delivered = groups.Find(g => g.State == OutboxRowState.Delivered)?.Count ?? 0,
            DeadLettered = groups.Find(g => g.State == OutboxRowState.DeadLettered)?.Count ?? 0,
        };
    }

    /// <summary>Lists dead-lettered events, oldest first.</summary>
    /// <param name="context">The application's context.</param>
    /// <param name="take">How many to return at most. The default value is 100.</param>
    /// <param name="afterId">Returns events with a larger id, for paging.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The dead letters.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="take"/> is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">The model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing), or its table was never created in the database (the message says how to create it).</exception>
    public static async Task<IReadOnlyList<ThrivestackDeadLetter>> GetThrivestackDeadLettersAsync(
        this DbContext context,
        int take = 100,
        long afterId = 0,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(take);
        var rows = await NamingAMissingTableAsync(
            context,
            nameof(GetThrivestackDeadLettersAsync),
            () => DeadLetters(context).Where(r => r.Id > afterId).OrderBy(r => r.Id).Take(take).ToListAsync(cancellationToken)).ConfigureAwait(false);
        return rows.Select(r => new ThrivestackDeadLetter
        {
            Id = r.Id,
            UserId = r.UserId,
            GroupId = r.GroupId,
            Attempts = r.Attempts,
            CreatedAt = new DateTimeOffset(r.CreatedAt, TimeSpan.Zero),
            DeadLetteredAt = new DateTimeOffset(r.DeadLetteredAt ?? r.CreatedAt, TimeSpan.Zero),
            Reason = r.LastError ?? "",
            Payload = r.Payload,
        }).ToArray();
    }

    /// <summary>
    /// Puts the given dead-lettered events back in line with fresh attempts (after fixing a token, a rejected trait or
    /// ThriveStack's side). They are sent again in their original order, after any newer event of the same user that is
    /// still pending, so a requeued event never overwrites newer traits; one whose user has had a newer event delivered
    /// since is sent all the same (identify events carry the user's traits as they were then: requeue with care).
    /// </summary>
    /// <param name="context">The application's context.</param>
    /// <param name="ids">The events to requeue (ids from <see cref="GetThrivestackDeadLettersAsync"/>). Ids that are not dead letters are ignored.</param>
    /// <param name="cancellationToken">Cancels the update.</param>
    /// <returns>How many events were requeued.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> or <paramref name="ids"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">The model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing), or its table was never created in the database (the message says how to create it).</exception>
    public static Task<int> RequeueThrivestackDeadLettersAsync(this DbContext context, IReadOnlyCollection<long> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(ids);
        return RequeueAsync(context, nameof(RequeueThrivestackDeadLettersAsync), ByIds(context, ids), cancellationToken);
    }

    /// <summary>Puts every dead-lettered event back in line with fresh attempts, in their original order.</summary>
    /// <param name="context">The application's context.</param>
    /// <param name="cancellationToken">Cancels the update.</param>
    /// <returns>How many events were requeued.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">The model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing), or its table was never created in the database (the message says how to create it).</exception>
    public static Task<int> RequeueAllThrivestackDeadLettersAsync(this DbContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        return RequeueAsync(context, nameof(RequeueAllThrivestackDeadLettersAsync), DeadLetters(context), cancellationToken);
    }

    /// <summary>Deletes the given dead-lettered events for good.</summary>
    /// <param name="context">The application's context.</param>
    /// <param name="ids">The events to delete. Ids that are not dead letters are ignored.</param>
    /// <param name="cancellationToken">Cancels the delete.</param>
    /// <returns>How many events were deleted.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> or <paramref name="ids"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">The model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing), or its table was never created in the database (the message says how to create it).</exception>
    public static Task<int> PurgeThrivestackDeadLettersAsync(this DbContext context, IReadOnlyCollection<long> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(ids);
        return NamingAMissingTableAsync(context, nameof(PurgeThrivestackDeadLettersAsync), () => ByIds(context, ids).ExecuteDeleteAsync(cancellationToken));
    }

    /// <summary>Deletes every dead-lettered event for good.</summary>
    /// <param name="context">The application's context.</param>
    /// <param name="cancellationToken">Cancels the delete.</param>
    /// <returns>How many events were deleted.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">The model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing), or its table was never created in the database (the message says how to create it).</exception>
    public static Task<int> PurgeAllThrivestackDeadLettersAsync(this DbContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        return NamingAMissingTableAsync(context, nameof(PurgeAllThrivestackDeadLettersAsync), () => DeadLetters(context).ExecuteDeleteAsync(cancellationToken));
    }

    private static async Task<int> RequeueAsync(DbContext context, string operation, IQueryable<OutboxMessage> letters, CancellationToken cancellationToken)
    {
        var now = OptionsFacts.Of(context).Clock.GetUtcNow().UtcDateTime;
        var count = await NamingAMissingTableAsync(
            context,
            operation,
            () => letters.ExecuteUpdateAsync(
                s => s.SetProperty(r => r.State, OutboxRowState.Pending)
                    .SetProperty(r => r.Attempts, 0)
                    .SetProperty(r => r.NextAttemptAt, now)
                    .SetProperty(r => r.DeadLetteredAt, (DateTime?)null)
                    .SetProperty(r => r.LeaseId, (Guid?)null)
                    .SetProperty(r => r.LeaseExpiresAt, (DateTime?)null),
                cancellationToken)).ConfigureAwait(false);
        if (count > 0)
        {
            CommitNudge.Now(context);
        }

        return count;
    }

    /// <summary>An outbox table that was never created is named, with the commands that create it, not only as the database's "no such table".</summary>
    private static async Task<T> NamingAMissingTableAsync<T>(DbContext context, string operation, Func<Task<T>> query)
    {
        try
        {
            return await query().ConfigureAwait(false);
        }
        catch (DbException exception) when (MissingOutboxTable.Explain(context.Model, exception, $"{operation} needs it.") is { } missing)
        {
            throw missing;
        }
    }

    private static IQueryable<OutboxMessage> DeadLetters(DbContext context) =>
        context.Set<OutboxMessage>().AsNoTracking().Where(r => r.State == OutboxRowState.DeadLettered);

    private static IQueryable<OutboxMessage> ByIds(DbContext context, IReadOnlyCollection<long> ids) =>
        DeadLetters(context).Where(r => ids.Contains(r.Id));
}
