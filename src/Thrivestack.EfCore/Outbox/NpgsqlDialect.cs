using System.Data;
using System.Data.Common;
using System.Globalization;
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
        // Written so that its cost follows the claim's size, not the backlog's, whatever the planner's statistics say.
        // A new or fast-changing outbox has stale ones (autovacuum analyzes it once a minute at best), and with them
        // the planner chose a bitmap scan of every pending row and an anti-join that compared every pending row with
        // every other: 0.4 s for 400 rows of a 2,000-row backlog, seconds at 10,000. So: a user's oldest row is found
        // by a lookup in ix_pending_user per candidate (a subquery with LIMIT 1 is never turned into a join), the
        // picked rows by a lookup per head user (LATERAL), the partial users by a hashed NOT IN, and no bitmap scan:
        // the heads are read in id order and the scan stops at the limit. A plain index scan also marks the index
        // entries of rows deleted since as dead, which a bitmap scan never does, so later scans skip them instead of
        // visiting their heap pages until vacuum. JIT is off too: the planner cannot know how many rows pass the
        // oldest-row check, so it prices the statement above jit_above_cost and compiled it on every claim (300 ms for
        // a claim that runs in 10). The settings hold for the command's implicit transaction only (its statements share
        // one Sync); set_config, because SET LOCAL in a command's first statement makes the server log a warning on
        // every claim. Their one-row result comes before the claimed rows (OutboxStore skips it).
        return $$"""
            SELECT set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true);
            WITH heads AS (
              SELECT h."user_id" FROM {{t}} AS h
              WHERE {{OutboxClaimSql.Where("h")}}
                AND h."id" = (SELECT o."id" FROM {{t}} AS o WHERE o."state" = 0 AND o."user_id" = h."user_id" ORDER BY o."id" LIMIT 1)
              ORDER BY h."id" LIMIT @p4
              FOR UPDATE SKIP LOCKED),
            picked AS (
              SELECT p."id", p."user_id" FROM heads AS hd CROSS JOIN LATERAL (
                SELECT r."id", r."user_id" FROM {{t}} AS r
                WHERE {{OutboxClaimSql.Where("r")}} AND r."user_id" = hd."user_id"
                ORDER BY r."id" LIMIT @p4) AS p
              ORDER BY p."id" LIMIT @p4),
            locked AS (
              SELECT r."id" AS "locked_id", r."user_id" AS "locked_user" FROM {{t}} AS r JOIN picked AS p ON r."id" = p."id"
              FOR UPDATE OF r SKIP LOCKED),
            partial AS (
              SELECT p."user_id" FROM picked AS p WHERE p."id" NOT IN (SELECT "locked_id" FROM locked))
            UPDATE {{t}} AS u SET "lease_id" = @p0, "lease_owner" = @p1, "lease_expires_at" = @p2
            FROM locked AS l WHERE u."id" = l."locked_id" AND l."locked_user" NOT IN (SELECT "user_id" FROM partial)
            RETURNING u.{{OutboxClaimSql.Returning}}
            """;
    }

    public override string? StatisticsSql(OutboxTable table, ISqlGenerationHelper sql) => CountPendingSql(table, sql);

    public override bool PrepareTableProbe(DbCommand command, ISqlGenerationHelper sql, string table, string? schema)
    {
        command.CommandText = $"SELECT to_regclass({sql.GenerateParameterNamePlaceholder("name")}) IS NOT NULL";
        AddParameter(command, sql.GenerateParameterName("name"), sql.DelimitIdentifier(table, schema));
        return false;
    }

    public override IsolationLevel? BackfillIsolation => IsolationLevel.ReadCommitted;

    /// <summary>
    /// The chunk holds the outbox's writer lock (an advisory lock keyed by the outbox table) exclusively; every transaction
    /// that writes outbox rows holds it shared (<see cref="WriterLockSql"/>). So every transaction that already wrote an
    /// event has committed before the chunk reads, and every later one writes its event after the chunk commits. Only the
    /// event writers wait: the dispatcher's claims and acknowledgements, and autovacuum, go on beside the chunk (a
    /// <c>LOCK TABLE</c> conflicted with all of them: a busy dispatcher starved the backfill and autovacuum skipped the
    /// outbox). A lock request that waits also holds up every later writer: it gives up after <paramref name="timeout"/>.
    /// The chunk's read is then planned as the index walk it is. EF joins table-split owned types to the raw keyset SQL
    /// (the table joined to itself on its key), and PostgreSQL merge-joined or hashed that join: every row before the
    /// chunk's key read again on every chunk, 1.3 s per chunk halfway through 1,000,000 users. A chunk is at most a few
    /// thousand rows in key order, so probing each row's key is always the cheap plan; the settings end with the chunk's
    /// transaction.
    /// </summary>
    public override string? LockOutboxSql(OutboxTable table, TimeSpan timeout, ISqlGenerationHelper sql)
    {
        var lockTimeout = Math.Max(1, (int)Math.Ceiling(timeout.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture);
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
