using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Metadata;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// One pass over the tracked entries (after one DetectChanges) that finds the changes needing identify
/// events. Unmapped entries cost a dictionary lookup each; nothing is allocated for them. With
/// <paramref name="findInserts"/> (providers whose saves may carry the rows in EF's command) it also tells whether the
/// save only inserts (<see cref="OnlyInserts"/>).
/// </summary>
internal sealed class ChangeScanner(ModelMap map, bool findInserts)
{
    private List<EntityEntry>? users;
    private List<Capture>? userCaptures;
    private List<Capture>? membershipCaptures;
    private List<(EntityEntry Entry, OwnedTraitMap Map)>? dirtyOwned;

    private const string PlainInsertAnnotation = "Thrivestack:InsertsPlainRow";

    private List<EntityEntry>? leftovers;
    private List<EntityEntry>? manualRows;
    private List<EntityEntry>? added;
    private List<EntityEntry>? addedOwned;
    private bool noUpdates = true;

    /// <summary>Outbox rows a previous, failed save of this interceptor left in the Added state.</summary>
    public IReadOnlyList<EntityEntry> Leftovers => (IReadOnlyList<EntityEntry>?)leftovers ?? [];

    /// <summary>Outbox rows the application added itself (<c>EnqueueThrivestackIdentify</c>).</summary>
    public IReadOnlyList<EntityEntry> ManualRows => (IReadOnlyList<EntityEntry>?)manualRows ?? [];

    /// <summary>
    /// The save only inserts rows of new entities: no tracked entry is modified or deleted, no owned entry is added to an
    /// owner that is not new (EF updates the owner's row when they share a table, and the owner's event carries its
    /// older traits either way), and every added type inserts a plain row (<see cref="InsertsPlainRow"/>). EF checks the
    /// rows an UPDATE or DELETE affected after the server ran it (a concurrency conflict is a client-side failure); a
    /// plain INSERT fails on the server or not at all. And a new row has no older values that a backfill could read.
    /// </summary>
    public bool OnlyInserts => findInserts && noUpdates && (addedOwned is null || OwnersAreNew(addedOwned, added));

    public void Scan(ChangeTracker tracker)
    {
        var outboxType = map.Outbox?.EntityType;
        foreach (var entry in tracker.Entries())
        {
            var type = entry.Metadata;
            if (findInserts && noUpdates)
            {
                NoteWrite(entry, type);
            }

            if (type == outboxType)
            {
                if (entry.State == EntityState.Added)
                {
                    if (((OutboxMessage)entry.Entity).Captured)
                    {
                        (leftovers ??= []).Add(entry);
                    }
                    else
                    {
                        (manualRows ??= []).Add(entry);
                    }
                }

                continue;
            }

            if (map.Users.TryGetValue(type, out var userMap))
            {
                (users ??= []).Add(entry);
                if (entry.State == EntityState.Added
                    || (entry.State == EntityState.Modified && TraitReader.AnyChanged(entry, userMap.DirectTraits, userMap.NonKeyProperties)))
                {
                    (userCaptures ??= []).Add(new Capture(entry, userMap, null, null));
                }
            }

            if (map.Memberships.TryGetValue(type, out var membershipMap) && IsMembershipChange(entry, membershipMap))
            {
                (membershipCaptures ??= []).Add(new Capture(null, null, entry, membershipMap));
            }

            if (map.OwnedTraits.Count > 0 && map.OwnedTraits.TryGetValue(type, out var ownedMap) && IsOwnedChange(entry, ownedMap))
            {
                (dirtyOwned ??= []).Add((entry, ownedMap));
            }
        }
    }

    /// <summary>The events of this save: owned changes folded into their owners, memberships joined with tracked users.</summary>
    public List<Capture> Captures()
    {
        if (membershipCaptures is null && dirtyOwned is null)
        {
            return userCaptures ?? [];
        }

        var captures = new List<Capture>();
        var captured = new HashSet<object>(ReferenceEqualityComparer.Instance);
        foreach (var capture in userCaptures ?? [])
        {
            captured.Add(capture.User!.Entity);
        }

        // Owners by root type and key, built once: one lookup per changed owned entry instead of a scan of every user.
        Dictionary<(IEntityType Root, object Key), EntityEntry>? owners = null;
        foreach (var (entry, ownedMap) in dirtyOwned ?? [])
        {
            owners ??= IndexByKey(users);
            if (owners.Count == 0)
            {
                // Every tracked user is inserted or deleted: inserted ones are captured already, deleted ones send nothing.
                break;
            }

            var ownerType = ownedMap.Owner.EntityType;
            if (owners.TryGetValue((ownerType.GetRootType(), KeyOf(entry.CurrentValues, ownedMap.Key)), out var owner)
                && ownerType.IsAssignableFrom(owner.Metadata)
                && owner.State is EntityState.Unchanged or EntityState.Modified
                && captured.Add(owner.Entity))
            {
                (userCaptures ??= []).Add(new Capture(owner, ownedMap.Owner, null, null));
            }
        }

        if (membershipCaptures is null)
        {
            captures.AddRange(userCaptures ?? []);
            return captures;
        }

        var usersById = new Dictionary<string, EntityEntry>();
        foreach (var user in users ?? [])
        {
            var userMap = map.Users[user.Metadata];
            if (user.State != EntityState.Deleted && userMap.UserId.Format(user.Property(userMap.UserId.Property).CurrentValue) is { } id)
            {
                usersById.TryAdd(id, user);
            }
        }

        var coveredUsers = new HashSet<object>(ReferenceEqualityComparer.Instance);
        foreach (var membership in membershipCaptures)
        {
            var mm = membership.MembershipMap!;
            var userId = mm.UserId.Format(membership.Membership!.Property(mm.UserId.Property).CurrentValue);
            if (userId is not null && usersById.TryGetValue(userId, out var user))
            {
                captures.Add(membership with { User = user, UserMap = map.Users[user.Metadata] });
                coveredUsers.Add(user.Entity);
            }
            else
            {
                captures.Add(membership);
            }
        }

        // A user who joins a group in the same save gets one event with traits and group id, not two.
        captures.AddRange((userCaptures ?? []).Where(c => !coveredUsers.Contains(c.User!.Entity)));
        return captures;
    }

    private static bool IsMembershipChange(EntityEntry entry, MembershipMap map)
    {
        if (entry.State == EntityState.Added)
        {
            return true;
        }

        if (entry.State != EntityState.Modified)
        {
            return false;
        }

        return Changed(entry.Property(map.UserId.Property)) || Changed(entry.Property(map.GroupId.Property));

        static bool Changed(PropertyEntry property) =>
            property.IsModified && !property.Metadata.GetValueComparer().Equals(property.OriginalValue, property.CurrentValue);
    }

    private static bool IsOwnedChange(EntityEntry entry, OwnedTraitMap map) => entry.State switch
    {
        EntityState.Added or EntityState.Deleted => true,
        EntityState.Modified => TraitReader.AnyChanged(entry, map.Traits, map.NonKeyProperties),
        _ => false,
    };

    private void NoteWrite(EntityEntry entry, IEntityType type)
    {
        if (entry.State is EntityState.Modified or EntityState.Deleted)
        {
            noUpdates = false;
        }
        else if (entry.State == EntityState.Added)
        {
            if (!InsertsPlainRow(type))
            {
                noUpdates = false;
            }
            else if (type.IsOwned())
            {
                (addedOwned ??= []).Add(entry);
            }
            else
            {
                (added ??= []).Add(entry);
            }
        }
    }

    /// <summary>
    /// Whether EF inserts an added entity of this type as a plain row of its own: not a dependent that shares the table of
    /// another type's rows (EF updates that row), not through a stored procedure, into a table without triggers (either can
    /// affect no row without an error, which EF finds only after the server ran the command). Cached per type.
    /// </summary>
    private static bool InsertsPlainRow(IEntityType type) =>
        type.GetOrAddRuntimeAnnotationValue(PlainInsertAnnotation, static t => FindPlainInsert(t!), type);

    private static bool FindPlainInsert(IEntityType type)
    {
        if (type.GetTableName() is null || type.GetInsertStoredProcedure() is not null || type.GetDeclaredTriggers().Any())
        {
            return false;
        }

        var rows = RowOwner(type);
        foreach (var mapping in type.GetTableMappings())
        {
            if (mapping.Table.Triggers.Any())
            {
                return false;
            }

            foreach (var other in mapping.Table.EntityTypeMappings)
            {
                // Every type in the table must belong to the same rows: one hierarchy (TPH) and the types it owns there.
                if (other.TypeBase is IEntityType otherType && RowOwner(otherType) != rows)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>The root of the top-level owner of a type (the type's own root when it is not owned).</summary>
    private static IEntityType RowOwner(IEntityType type)
    {
        while (type.FindOwnership() is { } ownership)
        {
            type = ownership.PrincipalEntityType;
        }

        return type.GetRootType();
    }

    /// <summary>Every added owned entry belongs to an added (non-owned) owner.</summary>
    private static bool OwnersAreNew(List<EntityEntry> ownedEntries, List<EntityEntry>? addedEntries)
    {
        if (addedEntries is null)
        {
            return false;
        }

        var newOwners = new HashSet<(IEntityType, object)>(addedEntries.Count, OwnerKeyComparer.Instance);
        foreach (var entry in addedEntries)
        {
            newOwners.Add((entry.Metadata.GetRootType(), KeyOf(entry.CurrentValues, entry.Metadata.FindPrimaryKey()!.Properties)));
        }

        foreach (var entry in ownedEntries)
        {
            var ownership = entry.Metadata.FindOwnership()!;
            if (ownership.PrincipalEntityType.IsOwned()
                || !newOwners.Contains((ownership.PrincipalEntityType.GetRootType(), KeyOf(entry.CurrentValues, ownership.Properties))))
            {
                return false;
            }
        }

        return true;
    }

    private static Dictionary<(IEntityType Root, object Key), EntityEntry> IndexByKey(List<EntityEntry>? users)
    {
        // Only owners whose own entry is unchanged or modified can gain an event through an owned change.
        var owners = users?.Where(u => u.State is EntityState.Unchanged or EntityState.Modified).ToList() ?? [];
        var index = new Dictionary<(IEntityType, object), EntityEntry>(owners.Count, OwnerKeyComparer.Instance);
        foreach (var user in owners)
        {
            index.TryAdd((user.Metadata.GetRootType(), KeyOf(user.CurrentValues, user.Metadata.FindPrimaryKey()!.Properties)), user);
        }

        return index;
    }

    /// <summary>A single key value as it is; a composite key as an array compared element by element.</summary>
    private static object KeyOf(PropertyValues values, IReadOnlyList<IProperty> key)
    {
        if (key.Count == 1)
        {
            return values[key[0]] ?? DBNull.Value;
        }

        var parts = new object?[key.Count];
        for (var i = 0; i < parts.Length; i++)
        {
            parts[i] = values[key[i]];
        }

        return parts;
    }

    private sealed class OwnerKeyComparer : IEqualityComparer<(IEntityType Root, object Key)>
    {
        public static readonly OwnerKeyComparer Instance = new();

        public bool Equals((IEntityType Root, object Key) x, (IEntityType Root, object Key) y) =>
            ReferenceEquals(x.Root, y.Root)
            && (x.Key is object?[] a && y.Key is object?[] b ? a.AsSpan().SequenceEqual(b) : x.Key.Equals(y.Key));

        public int GetHashCode((IEntityType Root, object Key) obj)
        {
            if (obj.Key is not object?[] parts)
            {
                return HashCode.Combine(obj.Root, obj.Key);
            }

            var hash = new HashCode();
            hash.Add(obj.Root);
            foreach (var part in parts)
            {
                hash.Add(part);
            }

            return hash.ToHashCode();
        }
    }
}
