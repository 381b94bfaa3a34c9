using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// SQLite's outbox-wide lease and its read-only claim. SQLite runs one writer at a time, so dispatchers sharing a file
/// gain nothing from claiming rows side by side, while a claim that writes its lease into every row rewrites each row's
/// page a second time (about a third of a drain's time). Instead one dispatcher per outbox holds a lease on the whole
/// outbox, kept in a row of the coordination table (<c>thrivestack_backfill</c>, name <see cref="Name"/>, entity the outbox
/// table), and claims by reading; its lanes keep their pages apart in memory.
/// </summary>
/// <remarks>
/// Parameters of <see cref="Hold"/>: @p0 the outbox's key, @p1 owner, @p2 now, @p3 lease end, @p4 lease horizon (a lease
/// ending after it was written by a clock that has since stepped back, and counts as expired).
/// Parameters of <see cref="Claim"/>: as <see cref="OutboxClaimSql"/>'s (@p1 owner, @p3 now, @p4 row limit, @p5 retry
/// horizon, @p6 lease horizon), @p7 a JSON array of the users whose pages are in flight in this process, @p8 the outbox's
/// key: a dispatcher whose lease was taken claims nothing from that moment, not only from its next renewal.
/// </remarks>
internal sealed class DispatcherLeaseSql
{
    /// <summary>The coordination row's name; backfill names cannot start with a parenthesis.</summary>
    public const string Name = "(dispatcher)";

    public DispatcherLeaseSql(OutboxTable outbox, string? coordinationTable, string? coordinationSchema, ISqlGenerationHelper sql)
    {
        var t = sql.DelimitIdentifier(outbox.TableName, outbox.Schema);
        Key = outbox.Schema is null ? outbox.TableName : $"{outbox.Schema}.{outbox.TableName}";
        var c = sql.DelimitIdentifier(coordinationTable ?? "thrivestack_backfill", coordinationSchema);
        var row = $"\"name\" = '{Name}' AND \"entity\" = @p0";

        // An upsert that takes the lease when it is free, ours, expired or impossible; RETURNING yields a row only then.
        Hold = $$"""
            INSERT INTO {{c}} ("name", "entity", "processed", "enqueued", "updated_at", "lock_owner", "lock_expires_at")
            VALUES ('{{Name}}', @p0, 0, 0, @p2, @p1, @p3)
            ON CONFLICT ("name", "entity") DO UPDATE SET "lock_owner" = excluded."lock_owner",
              "lock_expires_at" = excluded."lock_expires_at", "updated_at" = excluded."updated_at"
            WHERE "lock_owner" IS NULL OR "lock_owner" = excluded."lock_owner" OR "lock_expires_at" IS NULL
              OR "lock_expires_at" <= @p2 OR "lock_expires_at" > @p4
            RETURNING "lock_owner"
            """;
        Holder = $"SELECT \"lock_owner\" FROM {c} WHERE {row}";

        // Taken from a holder that looks gone (no process of its id on this machine) only once it has also missed its
        // renewals (a live holder renews every quarter lease): @p5 that holder, @p6 the latest renewal that counts as missed.
        // A process id alone can lie: another PID namespace, /proc hidden from other users.
        TakeOver = $"UPDATE {c} SET \"lock_owner\" = @p1, \"lock_expires_at\" = @p3, \"updated_at\" = @p2 WHERE {row} AND \"lock_owner\" = @p5 AND \"updated_at\" <= @p6 RETURNING \"lock_owner\"";
        Release = $"UPDATE {c} SET \"lock_owner\" = NULL, \"lock_expires_at\" = NULL, \"updated_at\" = @p2 WHERE {row} AND \"lock_owner\" = @p1 RETURNING \"entity\"";

        // The acknowledgement of delivered rows (@p0 a JSON array of ids), while the lease is @p2's: one raw statement through
        // EF (its interceptors and logging see it), without the LINQ pipeline to run per batch and to compile at start.
        Delete = $"DELETE FROM {t} WHERE \"id\" IN (SELECT \"value\" FROM json_each(@p0)) AND EXISTS (SELECT 1 FROM {c} WHERE \"name\" = '{Name}' AND \"entity\" = @p1 AND \"lock_owner\" = @p2)";

        // The claim reads: rows due, of users with nothing in flight here and no older row waiting (a retry, or a row
        // leased by a dispatcher of an earlier version), in outbox order. Nothing is written.
        Claim = $$"""
            SELECT r.{{OutboxClaimSql.Returning}} FROM {{t}} AS r
            WHERE {{OutboxClaimSql.Where("r")}}
              AND r."user_id" NOT IN (SELECT "value" FROM json_each(@p7))
              AND EXISTS (SELECT 1 FROM {{c}} WHERE "name" = '{{Name}}' AND "entity" = @p8 AND "lock_owner" = @p1)
              AND NOT EXISTS (SELECT 1 FROM {{t}} AS o WHERE o."state" = 0 AND o."user_id" = r."user_id" AND o."id" < r."id" AND NOT ({{OutboxClaimSql.Where("o")}}))
            ORDER BY r."id" LIMIT @p4
            """;
    }

    /// <summary>The coordination row's entity: the outbox table, so two outboxes in one file have two leases.</summary>
    public string Key { get; }

    public string Hold { get; }

    public string Holder { get; }

    public string TakeOver { get; }

    public string Release { get; }

    public string Claim { get; }

    /// <summary>Deletes delivered rows: @p0 a JSON array of ids, @p1 the outbox's key, @p2 the owner.</summary>
    public string Delete { get; }
}
