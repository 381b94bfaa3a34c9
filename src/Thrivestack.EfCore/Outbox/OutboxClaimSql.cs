using System.Globalization;
using Microsoft.EntityFrameworkCore.Storage;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// The claim statement of PostgreSQL (SQLite claims by reading under an outbox-wide lease: <see cref="DispatcherLeaseSql"/>),
/// and the conditions every claim shares. Claims take whole users in outbox order: a user qualifies only when their oldest pending
/// row is claimable, so a user's rows are never in flight in two places and never overtake each other.
/// Parameters: @p0 lease id, @p1 owner, @p2 lease end, @p3 now, @p4 row limit, @p5 retry horizon, @p6 lease horizon.
/// </summary>
/// <remarks>
/// Leases and retry times are wall-clock times, possibly written by a clock that has since stepped back (or by another
/// instance whose clock runs ahead). A lease ending after the lease horizon, or a next attempt due after the retry horizon
/// (both well past what this dispatcher could have written now), cannot be genuine and counts as expired.
/// </remarks>
internal static class OutboxClaimSql
{
    public const string Sqlite = "Microsoft.EntityFrameworkCore.Sqlite";
    public const string Npgsql = "Npgsql.EntityFrameworkCore.PostgreSQL";

    private const string Claimable = "{0}.\"state\" = 0 AND ({0}.\"next_attempt_at\" <= @p3 OR {0}.\"next_attempt_at\" > @p5) AND ({0}.\"lease_expires_at\" IS NULL OR {0}.\"lease_expires_at\" <= @p3 OR {0}.\"lease_expires_at\" > @p6)";

    public const string Returning = "\"id\" AS \"Id\", \"user_id\" AS \"UserId\", \"group_id\" AS \"GroupId\", \"kind\" AS \"Kind\", \"payload\" AS \"Payload\", \"attempts\" AS \"Attempts\"";

    public static string? For(string? provider, OutboxTable table, ISqlGenerationHelper sql)
    {
        var t = sql.DelimitIdentifier(table.TableName, table.Schema);
        return provider switch
        {
            // SKIP LOCKED on each user's oldest row: a concurrent claimer skips the whole user instead of waiting.
            // The picked rows are locked with SKIP LOCKED too, and a user is taken only when all of its picked rows
            // could be locked: a row locked by someone else (an app transaction's FOR UPDATE on a row that is not
            // the user's oldest) would otherwise make the UPDATE wait, and every dispatcher with it.
            Npgsql => $$"""
                WITH heads AS (
                  SELECT h."user_id" FROM {{t}} AS h
                  WHERE {{Where("h")}}
                    AND NOT EXISTS (SELECT 1 FROM {{t}} AS o WHERE o."state" = 0 AND o."user_id" = h."user_id" AND o."id" < h."id")
                  ORDER BY h."id" LIMIT @p4
                  FOR UPDATE SKIP LOCKED),
                picked AS (
                  SELECT r."id", r."user_id" FROM {{t}} AS r
                  WHERE {{Where("r")}} AND r."user_id" IN (SELECT "user_id" FROM heads)
                  ORDER BY r."id" LIMIT @p4),
                locked AS (
                  SELECT r."id" AS "locked_id", r."user_id" AS "locked_user" FROM {{t}} AS r JOIN picked AS p ON r."id" = p."id"
                  FOR UPDATE OF r SKIP LOCKED),
                partial AS (
                  SELECT p."user_id" FROM picked AS p WHERE NOT EXISTS (SELECT 1 FROM locked AS l WHERE l."locked_id" = p."id"))
                UPDATE {{t}} AS u SET "lease_id" = @p0, "lease_owner" = @p1, "lease_expires_at" = @p2
                FROM locked AS l WHERE u."id" = l."locked_id" AND l."locked_user" NOT IN (SELECT "user_id" FROM partial)
                RETURNING u.{{Returning}}
                """,
            _ => null,
        };
    }

    /// <summary>The pending count and the oldest pending row's creation time (no parameters); null for providers without a claim statement here.</summary>
    public static string? Statistics(string? provider, OutboxTable table, ISqlGenerationHelper sql) =>
        provider is Sqlite or Npgsql
            ? $"SELECT COUNT(*), MIN(\"created_at\") FROM {sql.DelimitIdentifier(table.TableName, table.Schema)} WHERE \"state\" = 0"
            : null;

    public static string Where(string alias) => string.Format(CultureInfo.InvariantCulture, Claimable, alias);
}
