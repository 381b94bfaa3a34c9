using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// A change that needs an identify event. The event is built from the entries when it is written, so a
/// store-generated key can be read after the insert.
/// </summary>
internal sealed record Capture(EntityEntry? User, UserMap? UserMap, EntityEntry? Membership, MembershipMap? MembershipMap)
{
    public OutboxEventKind Kind => Membership is null ? OutboxEventKind.UserTraits : OutboxEventKind.Membership;

    /// <summary>True while an id this event needs is still a temporary value EF will replace with the database's key.</summary>
    public bool HasTemporaryId =>
        (User is not null && User.Property(UserMap!.UserId.Property).IsTemporary)
        || (Membership is not null
            && (Membership.Property(MembershipMap!.UserId.Property).IsTemporary || Membership.Property(MembershipMap.GroupId.Property).IsTemporary));

    /// <summary>The event's traits are read back from the user's row when it is written (<see cref="TraitReadBack"/>).</summary>
    public bool ReadBack { get; init; }

    private EntityEntry Entry => (Membership ?? User)!;

    /// <summary>
    /// The event, or null when it cannot be sent (no usable id). <paramref name="saved"/>: the traits read back from the
    /// user's row, by trait (<see cref="TraitReadBack.NotRead"/> where the context's value is taken).
    /// </summary>
    public OutboxMessage? ToMessage(DateTime timestampUtc, object?[]? saved = null)
    {
        // One PropertyValues per entry instead of one PropertyEntry per value read.
        var userValues = User?.CurrentValues;
        var rawUserId = Membership is not null
            ? Membership.Property(MembershipMap!.UserId.Property).CurrentValue
            : userValues![UserMap!.UserId.Property];
        var userIdMap = Membership is not null ? MembershipMap!.UserId : UserMap!.UserId;
        var userId = userIdMap.Format(rawUserId);
        if (userId is null)
        {
            if (rawUserId is not null)
            {
                Log.EmptyUserId(LoggerOf(Entry), Entry.Metadata.DisplayName());
            }

            return null;
        }

        var groupId = Membership is null ? null : MembershipMap!.GroupId.Format(Membership.Property(MembershipMap.GroupId.Property).CurrentValue);
        var maxLength = userIdMap.MaxLength;
        if (!OutboxIds.Fits(userId, maxLength) || (groupId is not null && !OutboxIds.Fits(groupId, maxLength)))
        {
            var longest = OutboxIds.Fits(userId, maxLength) ? groupId! : userId;
            Log.IdTooLong(LoggerOf(Entry), Entry.Metadata.DisplayName(), OutboxIds.Shorten(userId), longest.Length, maxLength);
            return null;
        }

        var writer = IdentifyEventWriter.Start(userId, timestampUtc);
        if (User is not null)
        {
            var traits = UserMap!.Traits;
            for (var i = 0; i < traits.Count; i++)
            {
                var trait = traits[i];
                var value = saved is not null && !ReferenceEquals(saved[i], TraitReadBack.NotRead) ? saved[i]
                    : trait.IsOwned ? TraitReader.CurrentValue(User, trait)
                    : userValues![trait.Property];
                if (value is not null && trait.Converter is not null)
                {
                    value = trait.Converter.ConvertToProvider(value);
                }

                writer.Trait(trait.Key, trait.ValueKind, value);
            }
        }

        return writer.Finish(userId, groupId, timestampUtc, Kind);
    }

    /// <summary>Only on the rare paths that warn: EF's logger factory is the application's when it has one.</summary>
    private static ILogger LoggerOf(EntityEntry entry) =>
        entry.Context.GetService<ILoggerFactory>().CreateLogger<ThrivestackIdentifyInterceptor>();
}
