using System.Data.Common;
using System.Globalization;
using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// The dispatcher's statements against one context's outbox. Each is one short statement in its own implicit
/// transaction: no database transaction is ever open while a request is in flight. Every acknowledgement
/// names the lease, so a dispatcher whose lease ran out cannot touch rows another one has claimed since.
/// </summary>
internal sealed class OutboxStore(DbContext context, string? owner = null)
{
    private const int CleanupBatch = 1000;

    private DbSet<OutboxMessage> Rows => context.Set<OutboxMessage>();

    private OutboxSql Sql => context.Model.GetOrAddRuntimeAnnotationValue(
        ThrivestackAnnotationNames.ClaimSql,
        static c =>
        {
            var table = ModelMap.For(c!.Model).RequireOutbox();
            var helper = c.GetService<ISqlGenerationHelper>();
            var dialect = OutboxDialect.For(c);
            var lease = dialect.OutboxLease(table, c.Model.FindEntityType(typeof(BackfillCheckpoint)), helper);
            return new OutboxSql(dialect.ClaimSql(table, helper), dialect.StatisticsSql(table, helper), lease, dialect.AnalyzeSql(table, helper));
        },
        context);

    /// <summary>The column of a claim's first result that carries <see cref="PlannerRowEstimate"/>.</summary>
    public const string PlannerRowsColumn = "planner_rows";

    /// <summary>
    /// How many pending rows the database's planner believed the outbox held at the last claim (PostgreSQL: the pending
    /// index's pg_class.reltuples; negative when never measured), or null where the claim does not say.
    /// </summary>
    public double? PlannerRowEstimate { get; private set; }

    /// <summary>Whether the planner's statistics for the outbox can be refreshed (<see cref="AnalyzeAsync"/>).</summary>
    public bool CanAnalyze => Sql.Analyze is not null;

    /// <summary>
    /// Refreshes the planner's statistics for the outbox (PostgreSQL's ANALYZE of the table) and returns its estimate of
    /// the pending rows afterwards: unchanged when the server skipped the table (a role that does not own it, autovacuum at work).
    /// </summary>
    public async Task<double?> AnalyzeAsync(CancellationToken cancellationToken)
    {
        double? estimate = null;
        await ExecuteDirectlyAsync(
            Sql.Analyze!,
            [],
            async (reader, ct) =>
            {
                do
                {
                    estimate = await ReadPlannerRowsAsync(reader, ct).ConfigureAwait(false) ?? estimate;
                }
                while (await reader.NextResultAsync(ct).ConfigureAwait(false));
            },
            cancellationToken).ConfigureAwait(false);
        return estimate;
    }

    /// <summary>The <see cref="PlannerRowsColumn"/> of the reader's current result, if it has that column and a value.</summary>
    private static async Task<double?> ReadPlannerRowsAsync(DbDataReader reader, CancellationToken cancellationToken)
    {
        for (var i = 0; i < reader.FieldCount; i++)
        {
            if (reader.GetName(i) == PlannerRowsColumn)
            {
                return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && !await reader.IsDBNullAsync(i, cancellationToken).ConfigureAwait(false)
                    ? reader.GetDouble(i)
                    : null;
            }
        }

        return null;
    }

    /// <summary>
    /// Whether this outbox is claimed by reading under one outbox-wide lease (SQLite, see <see cref="DispatcherLeaseSql"/>)
    /// rather than by writing a lease into each claimed row.
    /// </summary>
    public bool ClaimsByReading => Sql.Lease is not null;

    /// <summary>
    /// Takes or renews the outbox-wide lease until <paramref name="leaseEnd"/>; false while another dispatcher holds it.
    /// A holder of this machine whose process no longer runs (killed, crashed) and that has not renewed for half a lease
    /// is taken over then, instead of at its lease's end.
    /// </summary>
    public async Task<bool> HoldLeaseAsync(DateTime now, DateTime leaseEnd, CancellationToken cancellationToken)
    {
        var sql = Sql.Lease!;
        var horizon = leaseEnd + (3 * (leaseEnd - now));
        object[] parameters = [sql.Key, Owner, now, leaseEnd, horizon];
        if (await ExecuteScalarAsync(sql.Hold, parameters, cancellationToken).ConfigureAwait(false) is not null)
        {
            return true;
        }

        var holder = await ExecuteScalarAsync(sql.Holder, [sql.Key], cancellationToken).ConfigureAwait(false);
        var missedSince = now - ((leaseEnd - now) / 2);
        return holder is not null && LeaseOwner.IsGone(holder)
            && await ExecuteScalarAsync(sql.TakeOver, [.. parameters, holder, missedSince], cancellationToken).ConfigureAwait(false) is not null;
    }

    /// <summary>Gives the outbox-wide lease up (a dispatcher stopping), so another instance takes over without waiting for its end; null when it was not ours.</summary>
    public Task<string?> ReleaseLeaseAsync(DateTime now, CancellationToken cancellationToken)
    {
        var sql = Sql.Lease!;
        return ExecuteScalarAsync(sql.Release, [sql.Key, Owner, now], cancellationToken);
    }

    private string Owner => owner ?? throw new InvalidOperationException("This outbox store was created without a lease owner.");

    /// <summary>
    /// Leases up to <paramref name="limit"/> rows of whole users. <paramref name="longestRetry"/> (RetryMaxDelay) bounds how far
    /// ahead a genuine next attempt can lie; a lease can lie at most one lease duration (<paramref name="leaseEnd"/> -
    /// <paramref name="now"/>) ahead. Anything further was written by a clock that has since stepped back, and counts as due.
    /// </summary>
    public async Task<List<ClaimedRow>> ClaimAsync(Guid leaseId, string owner, DateTime now, DateTime leaseEnd, int limit, CancellationToken cancellationToken, TimeSpan? longestRetry = null, IReadOnlyCollection<string>? usersInFlight = null)
    {
        var lease = leaseEnd - now;
        var retryHorizon = now + (2 * (longestRetry ?? TimeSpan.FromMinutes(5)));
        // A lease ending further ahead than any dispatcher would set (a clock stepped back) counts as expired. Generous, so a
        // peer with a longer LeaseDuration (a configuration rolled out instance by instance) keeps its live lease.
        var leaseHorizon = leaseEnd + (3 * lease);
        List<ClaimedRow> rows;
        if (Sql.Lease is { } outboxLease)
        {
            var inFlight = JsonArrayText.Of(usersInFlight ?? []);
            rows = await ClaimDirectlyAsync(outboxLease.Claim, [leaseId, owner, leaseEnd, now, limit, retryHorizon, leaseHorizon, inFlight, outboxLease.Key], cancellationToken).ConfigureAwait(false);
        }
        else if (Sql.Claim is { } sql)
        {
            rows = await ClaimDirectlyAsync(sql, [leaseId, owner, leaseEnd, now, limit, retryHorizon, leaseHorizon], cancellationToken).ConfigureAwait(false);
        }
        else
        {
            rows = await ClaimPortablyAsync(leaseId, owner, now, leaseEnd, limit, retryHorizon, leaseHorizon, cancellationToken).ConfigureAwait(false);
        }

        rows.Sort(static (a, b) => a.Id.CompareTo(b.Id));
        return rows;
    }

    /// <summary>
    /// Runs the provider's connection set-up (<see cref="OutboxDialect.ConnectionSetUp"/>, SQLite's busy timeout), if it has
    /// one, on a connection that then stays open for the context's lifetime.
    /// </summary>
    public async Task SetUpConnectionAsync(CancellationToken cancellationToken)
    {
        if (OutboxDialect.For(context).ConnectionSetUp is { } setUp)
        {
            await context.Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await ExecuteDirectlyAsync(setUp, [], static (_, _) => Task.CompletedTask, cancellationToken).ConfigureAwait(false);
        }
    }

    public Task<int> DeliveredAsync(IReadOnlyCollection<long> ids, Guid leaseId, DateTime now, bool keep, CancellationToken cancellationToken) =>
        !keep && Sql.Lease is { } lease
            ? context.Database.ExecuteSqlRawAsync(lease.Delete, [JsonArrayText.Of(ids), lease.Key, Owner], cancellationToken)
            : keep
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
        ClaimsByReading ? Task.FromResult(ids.Count) : Leased(ids, leaseId).ExecuteUpdateAsync(
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
        if (Sql.Statistics is not { } sql)
        {
            var pending = Rows.Where(r => r.State == OutboxRowState.Pending);
            var count = await pending.LongCountAsync(cancellationToken).ConfigureAwait(false);
            var oldest = count == 0 ? null : await pending.MinAsync(r => (DateTime?)r.CreatedAt, cancellationToken).ConfigureAwait(false);
            return new OutboxStatistics(count, OutboxStatistics.AgeOf(oldest, now));
        }

        var statistics = new OutboxStatistics(0, TimeSpan.Zero);
        await ExecuteDirectlyAsync(
            sql,
            [],
            async (reader, ct) =>
            {
                if (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var count = Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture);
                    DateTime? oldest = count == 0 || await reader.IsDBNullAsync(1, ct).ConfigureAwait(false) ? null : DateTime.SpecifyKind(reader.GetDateTime(1), DateTimeKind.Utc);
                    statistics = new OutboxStatistics(count, OutboxStatistics.AgeOf(oldest, now));
                }
            },
            cancellationToken).ConfigureAwait(false);
        return statistics;
    }

    /// <summary>Who holds a lease or a lock, for an operator reading the table: machine, process and a unique part.</summary>
    public static string NewOwner() => Truncate($"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}", 200);

    public static string Truncate(string text, int length = 2000) => text.Length <= length ? text : text[..(length - 3)] + "...";

    // One parameter for the whole id list (a JSON array on SQLite, an array on PostgreSQL): EF 10 would otherwise
    // expand it into one parameter per id, and a 1,000-parameter statement costs more to build and prepare.
    // Under the outbox-wide lease, a row is ours while the lease is: the check and the write are one statement.
    private IQueryable<OutboxMessage> Leased(IReadOnlyCollection<long> ids, Guid leaseId)
    {
        var list = ids as long[] ?? ids.ToArray();
        if (Sql.Lease is { } lease)
        {
            var key = lease.Key;
            var holder = Owner;
            return Rows.Where(r => EF.Parameter(list).Contains(r.Id) && context.Set<BackfillCheckpoint>()
                .Any(c => c.Name == DispatcherLeaseSql.Name && c.Entity == key && c.LockOwner == holder));
        }

        return Rows.Where(r => EF.Parameter(list).Contains(r.Id) && r.LeaseId == leaseId);
    }

    private async Task<string?> ExecuteScalarAsync(string sql, object[] parameters, CancellationToken cancellationToken)
    {
        string? value = null;
        await ExecuteDirectlyAsync(
            sql,
            parameters,
            async (reader, ct) =>
            {
                if (await reader.ReadAsync(ct).ConfigureAwait(false) && !await reader.IsDBNullAsync(0, ct).ConfigureAwait(false))
                {
                    value = reader.GetString(0);
                }
            },
            cancellationToken).ConfigureAwait(false);
        return value;
    }

    private async Task<List<ClaimedRow>> ClaimDirectlyAsync(string sql, object[] parameters, CancellationToken cancellationToken)
    {
        var rows = new List<ClaimedRow>();
        PlannerRowEstimate = null;
        await ExecuteDirectlyAsync(
            sql,
            parameters,
            async (reader, ct) =>
            {
                // A claim may begin with a statement of its own (PostgreSQL's planner settings and estimate): its rows come first.
                while (reader.FieldCount == 0 || reader.GetName(0) != nameof(ClaimedRow.Id))
                {
                    PlannerRowEstimate = await ReadPlannerRowsAsync(reader, ct).ConfigureAwait(false) ?? PlannerRowEstimate;

                    if (!await reader.NextResultAsync(ct).ConfigureAwait(false))
                    {
                        return;
                    }
                }

                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    rows.Add(new ClaimedRow
                    {
                        Id = Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture),
                        UserId = reader.GetString(1),
                        GroupId = await reader.IsDBNullAsync(2, ct).ConfigureAwait(false) ? null : reader.GetString(2),
                        Kind = Convert.ToInt32(reader.GetValue(3), CultureInfo.InvariantCulture),
                        Payload = reader.GetString(4),
                        Attempts = Convert.ToInt32(reader.GetValue(5), CultureInfo.InvariantCulture),
                    });
                }
            },
            cancellationToken).ConfigureAwait(false);
        return rows;
    }

    // The dispatcher's idle statements (PRAGMA, claim, statistics) run through ADO.NET on the context's connection, with the
    // same SQL and EF's own parameter mappings: EF would log each at Information ("Executed DbCommand", every poll) into
    // the app's log, and compile them as queries first.
    private async Task ExecuteDirectlyAsync(string sql, object[] parameters, Func<DbDataReader, CancellationToken, Task> read, CancellationToken cancellationToken)
    {
        var database = context.Database;
        await database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var command = CreateCommand(sql, parameters);
            await using (command.ConfigureAwait(false))
            {
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    await read(reader, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            await database.CloseConnectionAsync().ConfigureAwait(false);
        }
    }

    private DbCommand CreateCommand(string sql, object[] parameters)
    {
        var database = context.Database;
        var command = database.GetDbConnection().CreateCommand();
        command.CommandText = sql;
        command.Transaction = database.CurrentTransaction?.GetDbTransaction();
        var mappings = context.GetService<IRelationalTypeMappingSource>();
        for (var i = 0; i < parameters.Length; i++)
        {
            var value = parameters[i];
            var mapping = mappings.FindMapping(value.GetType())
                ?? throw new InvalidOperationException($"No type mapping for {value.GetType().Name}.");
            command.Parameters.Add(mapping.CreateParameter(command, "p" + i.ToString(CultureInfo.InvariantCulture), value));
        }

        return command;
    }

    // Other relational providers: a conditional update that only one claimer can win per row, then a read by lease.
    private async Task<List<ClaimedRow>> ClaimPortablyAsync(Guid leaseId, string owner, DateTime now, DateTime leaseEnd, int limit, DateTime retryHorizon, DateTime leaseHorizon, CancellationToken cancellationToken)
    {
        var due = Due(now, retryHorizon, leaseHorizon);
        var pending = Rows.Where(r => r.State == OutboxRowState.Pending);
        var claimable = pending.Where(due);
        var waiting = pending.Where(Expression.Lambda<Func<OutboxMessage, bool>>(Expression.Not(due.Body), due.Parameters));
        // Users whose oldest pending row is due. No LIMIT in this subquery (MySQL refuses LIMIT in an IN subquery): the
        // first rows of the read below in id order belong to the first such users anyway, since a user's rows follow its head.
        var heads = claimable
            .Where(h => !pending.Any(o => o.UserId == h.UserId && o.Id < h.Id))
            .Select(h => h.UserId);

        // A user's rows up to the first one that is not due (waiting for its retry, or leased by another claimer): a newer
        // row never goes ahead of an older one of its user.
        var ids = await claimable.Where(r => heads.Contains(r.UserId) && !waiting.Any(o => o.UserId == r.UserId && o.Id < r.Id))
            .OrderBy(r => r.Id).Select(r => r.Id).Take(limit)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        if (ids.Count == 0)
        {
            return [];
        }

        await claimable.Where(r => ids.Contains(r.Id)).ExecuteUpdateAsync(
            s => s.SetProperty(r => r.LeaseId, leaseId).SetProperty(r => r.LeaseOwner, owner).SetProperty(r => r.LeaseExpiresAt, leaseEnd),
            cancellationToken).ConfigureAwait(false);

        // Another claimer may have leased a user's older row between the read and the update (under SQL Server's snapshot
        // isolation or MySQL's, a check inside the update would read the rows as they were when it began). Once the lease is
        // committed, a row with an older pending row of its user outside this lease is given back: a row stays pending
        // until it is delivered, whoever holds it, so only the holder of a user's oldest pending row keeps it and sends.
        var behind = await Rows.Where(r => r.LeaseId == leaseId && pending.Any(o => o.UserId == r.UserId && o.Id < r.Id && o.LeaseId != leaseId))
            .Select(r => r.Id).ToListAsync(cancellationToken).ConfigureAwait(false);
        if (behind.Count > 0)
        {
            await ReleaseAsync(behind, leaseId, cancellationToken).ConfigureAwait(false);
        }

        return await Rows.Where(r => r.LeaseId == leaseId).Select(r => new ClaimedRow
        {
            Id = r.Id,
            UserId = r.UserId,
            GroupId = r.GroupId,
            Kind = (int)r.Kind,
            Payload = r.Payload,
            Attempts = r.Attempts,
        }).ToListAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A pending row that may be claimed: its next attempt is due (or lies further ahead than any retry could, a clock
    /// that stepped back) and it is not leased (or its lease ended, or lies further ahead than any lease could).
    /// </summary>
    private static Expression<Func<OutboxMessage, bool>> Due(DateTime now, DateTime retryHorizon, DateTime leaseHorizon) =>
        r => (r.NextAttemptAt <= now || r.NextAttemptAt > retryHorizon)
            && (r.LeaseExpiresAt == null || r.LeaseExpiresAt <= now || r.LeaseExpiresAt > leaseHorizon);
}
