using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Mapping;

/// <summary>
/// Everything the interceptor needs to know about a model, built once per model and kept as a runtime
/// annotation: lookups by entity type, so a save never reflects or re-reads annotations.
/// </summary>
internal sealed class ModelMap
{
    private static readonly ModelMap Empty = new([], [], [], null);

    private ModelMap(
        Dictionary<IEntityType, UserMap> users,
        Dictionary<IEntityType, MembershipMap> memberships,
        Dictionary<IEntityType, OwnedTraitMap> ownedTraits,
        OutboxTable? outbox)
    {
        Users = users;
        Memberships = memberships;
        OwnedTraits = ownedTraits;
        Outbox = outbox;
        HasMappings = users.Count > 0 || memberships.Count > 0;
    }

    public Dictionary<IEntityType, UserMap> Users { get; }

    public Dictionary<IEntityType, MembershipMap> Memberships { get; }

    public Dictionary<IEntityType, OwnedTraitMap> OwnedTraits { get; }

    public OutboxTable? Outbox { get; }

    public bool HasMappings { get; }

    public static ModelMap For(IModel model) =>
        model.GetOrAddRuntimeAnnotationValue(ThrivestackAnnotationNames.RuntimeMap, static m => Build(m!), model);

    public OutboxTable RequireOutbox() =>
        Outbox ?? throw new InvalidOperationException(
            "The model has no identify outbox. Call modelBuilder.AddThrivestackOutbox() in OnModelCreating and add a migration.");

    private static ModelMap Build(IModel model)
    {
        var resolution = MappingResolver.Resolve(model);
        // Without SQL type mappings (EF's InMemory provider) there is no table to write: capture nothing.
        if (resolution.Outbox is null || ((IEntityType)resolution.Outbox).FindPrimaryKey()?.Properties[0].FindTypeMapping() is not RelationalTypeMapping)
        {
            return Empty;
        }

        var users = new Dictionary<IEntityType, UserMap>();
        var ownedTraits = new Dictionary<IEntityType, OwnedTraitMap>();
        foreach (var user in resolution.Users)
        {
            var map = new UserMap((IEntityType)user.EntityType, Id(user.UserId), user.Traits.Select(Trait).ToArray());
            users[map.EntityType] = map;
            foreach (var group in map.Traits.Where(t => t.IsOwned).GroupBy(t => t.Property.DeclaringType))
            {
                var ownedType = (IEntityType)group.Key;
                ownedTraits[ownedType] = new OwnedTraitMap(ownedType, map, group.ToArray());
            }
        }

        var memberships = resolution.Memberships.ToDictionary(
            m => (IEntityType)m.EntityType,
            m => new MembershipMap((IEntityType)m.EntityType, Id(m.UserId), Id(m.GroupId)));
        return new ModelMap(users, memberships, ownedTraits, new OutboxTable((IEntityType)resolution.Outbox));
    }

    private static IdMap Id(IReadOnlyProperty property) => new((IProperty)property, property.GetValueConverter());

    private static TraitMap Trait(MappingResolver.ResolvedTrait trait)
    {
        var property = (IProperty)trait.Property;
        var clr = Nullable.GetUnderlyingType(property.ClrType) ?? property.ClrType;
        var converter = MappingResolver.TraitKind(clr) is null ? property.GetValueConverter() : null;
        return new TraitMap(
            trait.Key,
            trait.Navigations.Cast<INavigation>().ToArray(),
            property,
            trait.Kind,
            converter,
            property.GetValueComparer());
    }
}
