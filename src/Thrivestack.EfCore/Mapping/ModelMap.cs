using Microsoft.EntityFrameworkCore.Metadata;

namespace Thrivestack.EfCore.Mapping;

/// <summary>
/// Everything the interceptor needs to know about a model, built once per model and kept as a runtime
/// annotation: lookups by entity type, so a save never reflects or re-reads annotations.
/// </summary>
internal sealed class ModelMap
{
    public static readonly ModelMap Empty = new([], [], [], null);

    public ModelMap(
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
        model.GetOrAddRuntimeAnnotationValue(ThrivestackAnnotationNames.RuntimeMap, static m => MappingResolver.Resolve(m!), model);

    public OutboxTable RequireOutbox() =>
        Outbox ?? throw new InvalidOperationException(
            "The model has no identify outbox. Call modelBuilder.AddThrivestackOutbox() in OnModelCreating and add a migration.");
}
