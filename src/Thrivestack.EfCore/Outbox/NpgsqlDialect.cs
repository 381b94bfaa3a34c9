using System.Data;
using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// PostgreSQL: dispatchers claim side by side with <c>FOR UPDATE SKIP LOCKED</c>, the last INSERT carries the COMMIT,
/// and a backfill chunk holds the outbox's writer lock against concurrent event writers with a request that gives up
/// after about a chunk's time.
/// </summary>
internal sealed class NpgsqlDialect : OutboxDialect
{
    public const string ProviderName = "Npgsql.EntityFrameworkCore.PostgreSQL";

    private const string LockNotAvailable = "55P03";

    public static readonly NpgsqlDialect Instance = new();

    private NpgsqlDialect()
    {
    }

    public override int MaxParameters => 65_535;

    /// <summary>Npgsql sends a command's statements with one Sync: the server skips the COMMIT when the INSERT fails.</summary>
    public override bool CommitsInBatch => true;

    /// <summary>The statements of one command before its Sync run in an implicit transaction: an error rolls back all of them.</summary>
    public override bool AppendsToSaveCommand => true;

    public override string? ClaimSql(OutboxTable table, ISqlGenerationHelper sql)
    {
        var t = sql.DelimitIdentifier(table.TableName, table.Schema);

        // SKIP LOCKED on each user's oldest row: a concurrent claimer skips the whole user instead of waiting.
        // The picked rows are locked with SKIP LOCKED too, and a user is taken only when all of its picked rows
        // could be locked: a row locked by someone else (an app transaction's FOR UPDATE on a row that is not
        // the user's oldest) would otherwise make the UPDATE wait, and every dispatcher with it.
        //
        // Written so that its cost follows the rows it passes (in id order, up to its last head), not the backlog, under
        // the statistics the planner may have. They are often wrong for an outbox: autovacuum analyzes it once a minute at
        // best, often while it is nearly empty (4 rows, say), and a burst (a backfill, an outage's backlog) then brings
        // thousands. With such statistics the planner chose, over the versions of this statement: a bitmap scan, or a
        // sequential one, of every pending row; an anti-join comparing every pending row with every other; a walk of the
        // whole pending index for each picked user; and joins of the picked rows that compared each with every pending
        // row (4,000,000 comparisons, 3 s, for 400 rows of 10,000: delivery stalled for a minute in a backfill). So:
        // - the heads are read in id order from the pending index and the scan stops at the limit (bitmap and
        //   sequential scans are off for the command), and each head's "oldest pending row of its user" check is a
        //   subquery with LIMIT 1, which the planner never turns into a join;
        // - the picked rows are the head users' rows (= ANY of an array) in id order up to the limit, and, once there
        //   are as many heads as the limit, no further than the last head (the heads themselves are that many claimable
        //   rows): a head user with thousands of newer rows is not read whole on every claim;
        // - a picked row has no older pending row of its user that is not claimable (one waiting for its retry, or leased
        //   elsewhere): it would overtake it (a LIMIT 1 subquery, as for the heads);
        // - rows are locked and updated by key (= ANY of an array), never by a join the planner could get wrong;
        // - the partial users are found with a hashed NOT IN.
        // One part stays at the planner's mercy: under statistics from a nearly empty outbox, the two LIMIT 1 checks may
        // walk the pending index from its start for each row they check (bounded by the rows the claim passes, not the
        // backlog), and the dispatcher refreshes such statistics at the first full claim (the estimate below, AnalyzeSql).
        // A plain index scan also marks the index entries of rows deleted since as dead, which a bitmap scan never does,
        // so later scans skip them instead of visiting their heap pages until vacuum. JIT is off too: the planner cannot
        // know how many rows pass the oldest-row check, so it priced the statement above jit_above_cost and compiled it
        // on every claim (300 ms for a claim that runs in 10). The settings hold for the command's implicit transaction
        // only (its statements share one Sync); set_config, because SET LOCAL in a command's first statement makes the
        // server log a warning on every claim. Their one-row result comes before the claimed rows, with the number of
        // pending rows the planner believes the outbox holds (the pending index's pg_class.reltuples): a full claim of
        // more rows than that shows the statistics stale.
        return $$"""
            SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true),
              ({{PendingRowsEstimateSql(table, sql)}}) AS "{{OutboxStore.PlannerRowsColumn}}";
            WITH heads AS (
              SELECT h."id", h."user_id" FROM {{t}} AS h
              WHERE {{OutboxClaimSql.Where("h")}}
                AND h."id" = (SELECT o."id" FROM {{t}} AS o WHERE o."state" = 0 AND o."user_id" = h."user_id" ORDER BY o."id" LIMIT 1)
              ORDER BY h."id" LIMIT @p4
              FOR UPDATE SKIP LOCKED),
            picked AS (
              SELECT r."id", r."user_id" FROM {{t}} AS r
              WHERE {{OutboxClaimSql.Where("r")}} AND r."user_id" = ANY(ARRAY(SELECT hd."user_id" FROM heads AS hd))
                AND r."id" <= (SELECT CASE WHEN count(*) >= @p4 THEN max(hd."id") ELSE 9223372036854775807 END FROM heads AS hd)
                AND (SELECT 1 FROM {{t}} AS o WHERE o."state" = 0 AND o."user_id" = r."user_id" AND o."id" < r."id" AND NOT ({{OutboxClaimSql.Where("o")}}) LIMIT 1) IS NULL
              ORDER BY r."id" LIMIT @p4),
            locked AS (
              SELECT r."id" AS "locked_id", r."user_id" AS "locked_user" FROM {{t}} AS r
              WHERE r."id" = ANY(ARRAY(SELECT p."id" FROM picked AS p))
              FOR UPDATE OF r SKIP LOCKED),
            partial AS (
              SELECT p."user_id" FROM picked AS p WHERE p."id" NOT IN (SELECT "locked_id" FROM locked))
            UPDATE {{t}} AS u SET "lease_id" = @p0, "lease_owner" = @p1, "lease_expires_at" = @p2
            WHERE u."id" = ANY(ARRAY(SELECT l."locked_id" FROM locked AS l WHERE l."locked_user" NOT IN (SELECT "user_id" FROM partial)))
            RETURNING u.{{OutboxClaimSql.Returning}}
            """;
    }

    public override string? StatisticsSql(OutboxTable table, ISqlGenerationHelper sql) => CountPendingSql(table, sql);

    /// <summary>
    /// ANALYZE of the outbox alone: it samples at most 30,000 of its pages (milliseconds for a healthy outbox, a few hundred
    /// for one bloated by a backfill). SKIP_LOCKED: while autovacuum works on the table it is skipped rather than waited for
    /// (a wait would also cancel autovacuum after a second); a role that does not own the table gets a warning from the
    /// server and nothing else.
    /// </summary>
    public override string? AnalyzeSql(OutboxTable table, ISqlGenerationHelper sql) =>
        $"ANALYZE (SKIP_LOCKED) {sql.DelimitIdentifier(table.TableName, table.Schema)}; SELECT ({PendingRowsEstimateSql(table, sql)}) AS \"{OutboxStore.PlannerRowsColumn}\"";

    /// <summary>
    /// How many pending rows the planner believes the outbox holds: the row count of the pending index (partial, so
    /// delivered rows kept by DeliveredRetention do not count), as the last VACUUM or ANALYZE left it; -1 if never measured.
    /// </summary>
    private static string PendingRowsEstimateSql(OutboxTable table, ISqlGenerationHelper sql)
    {
        var pending = table.EntityType.GetIndexes().Single(i => i.GetFilter() == OutboxModelConfiguration.PendingFilter && i.Properties is [{ Name: nameof(OutboxMessage.Id) }]);
        var name = sql.DelimitIdentifier(pending.GetDatabaseName(table.StoreObject)!, table.Schema).Replace("'", "''", StringComparison.Ordinal);
        return $"SELECT c.\"reltuples\"::float8 FROM pg_class AS c WHERE c.\"oid\" = to_regclass('{name}')";
    }

    public override bool PrepareTableProbe(DbCommand command, ISqlGenerationHelper sql, string table, string? schema)
    {
        command.CommandText = $"SELECT to_regclass({sql.GenerateParameterNamePlaceholder("name")}) IS NOT NULL";
        AddParameter(command, sql.GenerateParameterName("name"), sql.DelimitIdentifier(table, schema));
        return false;
    }

    public override IsolationLevel? BackfillIsolation => IsolationLevel.ReadCommitted;

    /// <summary>The shortest lock timeout of a backfill chunk, in milliseconds (see <see cref="LockOutboxSql"/>).</summary>
    internal const int MinimumChunkLockTimeoutMs = 5;

    /// <summary>
    /// The chunk holds the outbox's writer lock (an advisory lock keyed by the outbox table) exclusively; every transaction
    /// that writes outbox rows holds it shared (<see cref="WriterLockSql"/>). So every transaction that already wrote an
    /// event has committed before the chunk reads, and every later one writes its event after the chunk commits. Only the
    /// event writers wait: the dispatcher's claims and acknowledgements, and autovacuum, go on beside the chunk (a
    /// <c>LOCK TABLE</c> conflicted with all of them: a busy dispatcher starved the backfill and autovacuum skipped the
    /// outbox). A lock request that waits also holds up every later writer: it gives up after <paramref name="timeout"/>
    /// (at least <see cref="MinimumChunkLockTimeoutMs"/>).
    /// The chunk's read is then planned as the index walk it is. EF joins table-split owned types to the raw keyset SQL
    /// (the table joined to itself on its key), and PostgreSQL merge-joined or hashed that join: every row before the
    /// chunk's key read again on every chunk, 1.3 s per chunk halfway through 1,000,000 users. A chunk is at most a few
    /// thousand rows in key order, so probing each row's key is always the cheap plan; the settings end with the chunk's
    /// transaction.
    /// </summary>
    public override string? LockOutboxSql(OutboxTable table, TimeSpan timeout, ISqlGenerationHelper sql)
    {
        // At least 5 ms: the app's outbox inserts hold the shared side for a round trip or two, and a chunk that gives up
        // is deferred (a wait that doubles), so a lock timeout much shorter than that would defer most chunks of a busy app.
        var lockTimeout = Math.Max(MinimumChunkLockTimeoutMs, (int)Math.Ceiling(timeout.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture);
        return $"SET LOCAL lock_timeout = '{lockTimeout}ms'; SET LOCAL enable_mergejoin = off; SET LOCAL enable_hashjoin = off; "
            + $"SELECT pg_advisory_xact_lock({WriterLockKey(table, sql)})";
    }

    public override string? WriterLockSql(OutboxTable table, ISqlGenerationHelper sql) =>
        $"SELECT pg_advisory_xact_lock_shared({WriterLockKey(table, sql)});" + Environment.NewLine;

    public override (string Lock, string Unlock)? SessionWriterLockSql(OutboxTable table, ISqlGenerationHelper sql) =>
        ($"SELECT pg_advisory_lock_shared({WriterLockKey(table, sql)})", $"SELECT pg_advisory_unlock_shared({WriterLockKey(table, sql)})");

    /// <summary>The advisory lock's two keys: a constant of this library ("TSTB") and the outbox table's oid.</summary>
    private static string WriterLockKey(OutboxTable table, ISqlGenerationHelper sql) =>
        $"1414747202, '{sql.DelimitIdentifier(table.TableName, table.Schema).Replace("'", "''", StringComparison.Ordinal)}'::regclass::oid::int";

    public override bool IsLockTimeout(DbException exception) => exception.SqlState == LockNotAvailable;
}
