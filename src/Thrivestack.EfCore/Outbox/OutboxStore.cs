using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Diagnostics;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// The dispatcher's statements against one context's outbox. Each is one short statement in its own implicit
/// transaction: no database transaction is ever open while a request is in flight. Every acknowledgement
/// names the lease, so a dispatcher whose lease ran out cannot touch rows another one has claimed since.
/// </summary>
internal sealed class OutboxStore(DbContext context)
{
    private const int CleanupBatch = 1000;

    private DbSet<OutboxMessage> Rows => context.Set<OutboxMessage>();

    public async Task<List<ClaimedRow>> ClaimAsync(Guid leaseId, string owner, DateTime now, DateTime leaseEnd, int limit, CancellationToken cancellationToken)
    {
        var sql = context.Model.GetOrAddRuntimeAnnotationValue(
            ThrivestackAnnotationNames.ClaimSql,
            static c => OutboxClaimSql.For(c!.Database.ProviderName, ModelMap.For(c.Model).RequireOutbox(), c.GetService<ISqlGenerationHelper>()) ?? "",
            context);
        List<ClaimedRow> rows;
        if (sql.Length > 0)
        {
            rows = await context.Database.SqlQueryRaw<ClaimedRow>(sql, leaseId, owner, leaseEnd, now, limit).ToListAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            rows = await ClaimPortablyAsync(leaseId, owner, now, leaseEnd, limit, cancellationToken).ConfigureAwait(false);
        }

        rows.Sort(static (a, b) => a.Id.CompareTo(b.Id));
        return rows;
    }

    public Task<int> DeliveredAsync(IReadOnlyCollection<long> ids, Guid leaseId, DateTime now, bool keep, CancellationToken cancellationToken) =>
        keep
            ? Leased(ids, leaseId).ExecuteUpdateAsync(
                s => s.SetProperty(r => r.State, OutboxRowState.Delivered)
                    .SetProperty(r => r.DeliveredAt, now)
                    .SetProperty(r => r.LeaseId, (Guid?)null)
                    .SetProperty(r => r.LeaseExpiresAt, (DateTime?)null),
                cancellationToken)
            : Leased(ids, leaseId).ExecuteDeleteAsync(cancellationToken);

    public Task<int> RetryLaterAsync(IReadOnlyCollection<long> ids, Guid leaseId, DateTime nextAttemptAt, string error, CancellationToken cancellationToken) =>
        Leased(ids, leaseId).ExecuteUpdateAsync(
            s => s.SetProperty(r => r.Attempts, r => r.Attempts + 1)
                .SetProperty(r => r.NextAttemptAt, nextAttemptAt)
                .SetProperty(r => r.LastError, Truncate(error))
                .SetProperty(r => r.LeaseId, (Guid?)null)
                .SetProperty(r => r.LeaseExpiresAt, (DateTime?)null),
            cancellationToken);

    public Task<int> DeadLetterAsync(IReadOnlyCollection<long> ids, Guid leaseId, DateTime now, string reason, bool countAttempt, CancellationToken cancellationToken) =>
        Leased(ids, leaseId).ExecuteUpdateAsync(
            s => s.SetProperty(r => r.State, OutboxRowState.DeadLettered)
                .SetProperty(r => r.Attempts, r => r.Attempts + (countAttempt ? 1 : 0))
                .SetProperty(r => r.DeadLetteredAt, now)
                .SetProperty(r => r.LastError, Truncate(reason))
                .SetProperty(r => r.LeaseId, (Guid?)null)
                .SetProperty(r => r.LeaseExpiresAt, (DateTime?)null),
            cancellationToken);

    /// <summary>Gives rows back without spending an attempt (shutdown, auth pause, a user blocked by an older row).</summary>
    public Task<int> ReleaseAsync(IReadOnlyCollection<long> ids, Guid leaseId, CancellationToken cancellationToken) =>
        Leased(ids, leaseId).ExecuteUpdateAsync(
            s => s.SetProperty(r => r.LeaseId, (Guid?)null).SetProperty(r => r.LeaseExpiresAt, (DateTime?)null),
            cancellationToken);

    /// <summary>Deletes delivered rows older than the retention, a bounded batch per statement.</summary>
    public async Task<int> CleanupDeliveredAsync(DateTime deliveredBefore, CancellationToken cancellationToken)
    {
        var total = 0;
        while (true)
        {
            var ids = await Rows.Where(r => r.State == OutboxRowState.Delivered && r.DeliveredAt < deliveredBefore)
                .OrderBy(r => r.Id).Select(r => r.Id).Take(CleanupBatch).ToListAsync(cancellationToken).ConfigureAwait(false);
            if (ids.Count == 0)
            {
                return total;
            }

            total += await Rows.Where(r => ids.Contains(r.Id) && r.State == OutboxRowState.Delivered).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
            if (ids.Count < CleanupBatch)
            {
                return total;
            }
        }
    }

    public async Task<OutboxStatistics> StatisticsAsync(DateTime now, CancellationToken cancellationToken)
    {
        var pending = Rows.Where(r => r.State == OutboxRowState.Pending);
        var count = await pending.LongCountAsync(cancellationToken).ConfigureAwait(false);
        var oldest = count == 0 ? null : await pending.MinAsync(r => (DateTime?)r.CreatedAt, cancellationToken).ConfigureAwait(false);
        var age = oldest is { } o && now > o ? now - o : TimeSpan.Zero;
        return new OutboxStatistics(count, age);
    }

    public static string Truncate(string text, int length = 2000) => text.Length <= length ? text : text[..(length - 3)] + "...";

    // One parameter for the whole id list (a JSON array on SQLite, an array on PostgreSQL): EF 10 would otherwise
    // expand it into one parameter per id, and a 1,000-parameter statement costs more to build and prepare.
    private IQueryable<OutboxMessage> Leased(IReadOnlyCollection<long> ids, Guid leaseId)
    {
        var list = ids as long[] ?? ids.ToArray();
        return Rows.Where(r => EF.Parameter(list).Contains(r.Id) && r.LeaseId == leaseId);
    }

    // Other relational providers: a conditional update that only one claimer can win per row, then a read by lease.
    private async Task<List<ClaimedRow>> ClaimPortablyAsync(Guid leaseId, string owner, DateTime now, DateTime leaseEnd, int limit, CancellationToken cancellationToken)
    {
        var claimable = Rows.Where(r => r.State == OutboxRowState.Pending && r.NextAttemptAt <= now && (r.LeaseExpiresAt == null || r.LeaseExpiresAt <= now));
        var heads = claimable
            .Where(h => !Rows.Any(o => o.State == OutboxRowState.Pending && o.UserId == h.UserId && o.Id < h.Id))
            .OrderBy(h => h.Id).Select(h => h.UserId).Take(limit);
        var ids = await claimable.Where(r => heads.Contains(r.UserId)).OrderBy(r => r.Id).Select(r => r.Id).Take(limit)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        if (ids.Count == 0)
        {
            return [];
        }

        await claimable.Where(r => ids.Contains(r.Id)).ExecuteUpdateAsync(
            s => s.SetProperty(r => r.LeaseId, leaseId).SetProperty(r => r.LeaseOwner, owner).SetProperty(r => r.LeaseExpiresAt, leaseEnd),
            cancellationToken).ConfigureAwait(false);
        return await Rows.Where(r => r.LeaseId == leaseId).Select(r => new ClaimedRow
        {
            Id = r.Id, UserId = r.UserId, GroupId = r.GroupId, Kind = (int)r.Kind, Payload = r.Payload, Attempts = r.Attempts,
        }).ToListAsync(cancellationToken).ConfigureAwait(false);
    }
}
