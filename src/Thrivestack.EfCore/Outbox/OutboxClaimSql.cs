using System.Globalization;
using Microsoft.EntityFrameworkCore.Storage;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// The claim statements. Both take whole users in outbox order: a user qualifies only when their oldest pending
/// row is claimable, so a user's rows are never in flight in two places and never overtake each other.
/// Parameters: {0} lease id, {1} owner, {2} lease end, {3} now, {4} row limit.
/// </summary>
internal static class OutboxClaimSql
{
    public const string Sqlite = "Microsoft.EntityFrameworkCore.Sqlite";
    public const string Npgsql = "Npgsql.EntityFrameworkCore.PostgreSQL";

    private const string Claimable = "{0}.\"state\" = 0 AND {0}.\"next_attempt_at\" <= {{3}} AND ({0}.\"lease_expires_at\" IS NULL OR {0}.\"lease_expires_at\" <= {{3}})";

    private const string Returning = "\"id\" AS \"Id\", \"user_id\" AS \"UserId\", \"group_id\" AS \"GroupId\", \"kind\" AS \"Kind\", \"payload\" AS \"Payload\", \"attempts\" AS \"Attempts\"";

    public static string? For(string? provider, OutboxTable table, ISqlGenerationHelper sql)
    {
        var t = sql.DelimitIdentifier(table.TableName, table.Schema);
        var heads = $$"""
            SELECT h."user_id" FROM {{t}} AS h
            WHERE {{Where("h")}}
              AND NOT EXISTS (SELECT 1 FROM {{t}} AS o WHERE o."state" = 0 AND o."user_id" = h."user_id" AND o."id" < h."id")
            ORDER BY h."id" LIMIT {4}
            """;
        return provider switch
        {
            // SQLite runs one writer at a time, so the statement is atomic: one pass over pending rows in id order,
            // a row qualifies when no older pending row of its user is unclaimable (leased elsewhere or waiting for
            // a retry). One index probe per row and no sort, where the heads form below needs two and a sort.
            Sqlite => $$"""
                UPDATE {{t}} SET "lease_id" = {0}, "lease_owner" = {1}, "lease_expires_at" = {2}
                WHERE "id" IN (
                  SELECT r."id" FROM {{t}} AS r
                  WHERE {{Where("r")}}
                    AND NOT EXISTS (SELECT 1 FROM {{t}} AS o WHERE o."state" = 0 AND o."user_id" = r."user_id" AND o."id" < r."id" AND NOT ({{Where("o")}}))
                  ORDER BY r."id" LIMIT {4})
                RETURNING {{Returning}}
                """,

            // SKIP LOCKED on each user's oldest row: a concurrent claimer skips the whole user instead of waiting.
            Npgsql => $$"""
                WITH heads AS ({{heads}} FOR UPDATE SKIP LOCKED),
                picked AS (
                  SELECT r."id" FROM {{t}} AS r
                  WHERE {{Where("r")}} AND r."user_id" IN (SELECT "user_id" FROM heads)
                  ORDER BY r."id" LIMIT {4})
                UPDATE {{t}} AS u SET "lease_id" = {0}, "lease_owner" = {1}, "lease_expires_at" = {2}
                FROM picked WHERE u."id" = picked."id"
                RETURNING u.{{Returning}}
                """,
            _ => null,
        };
    }

    private static string Where(string alias) => string.Format(CultureInfo.InvariantCulture, Claimable, alias);
}
