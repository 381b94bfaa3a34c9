using System.Globalization;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// The conditions every claim shares (PostgreSQL's claim statement: <see cref="NpgsqlDialect"/>; SQLite claims by
/// reading under an outbox-wide lease: <see cref="DispatcherLeaseSql"/>). Claims take whole users in outbox order: a user
/// qualifies only when their oldest pending row is claimable, so a user's rows are never in flight in two places and never
/// overtake each other.
/// Parameters: @p0 lease id, @p1 owner, @p2 lease end, @p3 now, @p4 row limit, @p5 retry horizon, @p6 lease horizon.
/// </summary>
/// <remarks>
/// Leases and retry times are wall-clock times, possibly written by a clock that has since stepped back (or by another
/// instance whose clock runs ahead). A lease ending after the lease horizon, or a next attempt due after the retry horizon
/// (both well past what this dispatcher could have written now), cannot be genuine and counts as expired.
/// </remarks>
internal static class OutboxClaimSql
{
    private const string Claimable = "{0}.\"state\" = 0 AND ({0}.\"next_attempt_at\" <= @p3 OR {0}.\"next_attempt_at\" > @p5) AND ({0}.\"lease_expires_at\" IS NULL OR {0}.\"lease_expires_at\" <= @p3 OR {0}.\"lease_expires_at\" > @p6)";

    public const string Returning = "\"id\" AS \"Id\", \"user_id\" AS \"UserId\", \"group_id\" AS \"GroupId\", \"kind\" AS \"Kind\", \"payload\" AS \"Payload\", \"attempts\" AS \"Attempts\"";

    public static string Where(string alias) => string.Format(CultureInfo.InvariantCulture, Claimable, alias);
}
