using Microsoft.EntityFrameworkCore.Metadata;

namespace Thrivestack.EfCore.Mapping;

/// <summary>A user entity type with its id and traits, resolved once per model.</summary>
internal sealed record UserMap(IEntityType EntityType, IdMap UserId, IReadOnlyList<TraitMap> Traits)
{
    public IReadOnlyList<TraitMap> DirectTraits { get; } = Traits.Where(t => !t.IsOwned).ToArray();

    /// <summary>Non-key properties the app sets; an Update() of a detached entity marks every one of them modified.</summary>
    public IReadOnlyList<IProperty> NonKeyProperties { get; } =
        EntityType.GetProperties().Where(p => !p.IsPrimaryKey() && p.ValueGenerated == ValueGenerated.Never).ToArray();
}
