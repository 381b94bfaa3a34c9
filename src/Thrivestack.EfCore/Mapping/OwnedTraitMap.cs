using Microsoft.EntityFrameworkCore.Metadata;

namespace Thrivestack.EfCore.Mapping;

/// <summary>An owned entity type that stores traits of a user; a change to it is a change of its owner.</summary>
internal sealed record OwnedTraitMap(IEntityType OwnedType, UserMap Owner, IReadOnlyList<TraitMap> Traits)
{
    public IReadOnlyList<IProperty> NonKeyProperties { get; } =
        OwnedType.GetProperties().Where(p => !p.IsPrimaryKey() && p.ValueGenerated == ValueGenerated.Never).ToArray();

    public IReadOnlyList<IProperty> Key { get; } = OwnedType.FindPrimaryKey()!.Properties;
}
