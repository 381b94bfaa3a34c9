using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Thrivestack.EfCore.Mapping;

/// <summary>
/// One mapped trait resolved against the runtime model. <see cref="Navigations"/> is empty for a property
/// of the user entity itself and lists the owned references to walk for <c>Address.City</c>.
/// </summary>
internal sealed record TraitMap(
    string Key,
    IReadOnlyList<INavigation> Navigations,
    IProperty Property,
    TraitValueKind ValueKind,
    ValueConverter? Converter,
    ValueComparer Comparer)
{
    public bool IsOwned => Navigations.Count > 0;
}
