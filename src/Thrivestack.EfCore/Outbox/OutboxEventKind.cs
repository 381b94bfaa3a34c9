namespace Thrivestack.EfCore.Outbox;

/// <summary>What produced an outbox row; decides whether rows of one user may be coalesced.</summary>
internal enum OutboxEventKind
{
    /// <summary>A user insert or trait change: carries all current traits, so the newest supersedes older ones.</summary>
    UserTraits = 0,

    /// <summary>A membership insert or change: carries <c>context.group_id</c>.</summary>
    Membership = 1,

    /// <summary>Enqueued by the application; delivered as written.</summary>
    Manual = 2,

    /// <summary>
    /// A user's full traits enqueued by the backfill. Sent like <see cref="UserTraits"/> when alone; a live
    /// <see cref="UserTraits"/> row of the same user in the same claim wins over it whatever the ids.
    /// </summary>
    Backfill = 3,
}
