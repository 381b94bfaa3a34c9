using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Metadata;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Interception;

/// <summary>Reads trait values and trait changes from tracked entries, through owned references where mapped so.</summary>
internal static class TraitReader
{
    public static object? CurrentValue(EntityEntry user, TraitMap trait)
    {
        var entry = user;
        foreach (var navigation in trait.Navigations)
        {
            entry = entry.Reference(navigation).TargetEntry;
            if (entry is null)
            {
                return null;
            }
        }

        return entry.Property(trait.Property).CurrentValue;
    }

    /// <summary>
    /// True when a mapped trait of the Modified <paramref name="entry"/> really changed under its value comparer.
    /// An entity attached with Update() has every property marked modified and no real originals (EF copied the
    /// current values): then its traits are sent in full. An entity loaded and then passed to Update() (as
    /// ASP.NET Core Identity's stores do) has real originals for the properties that changed: only those count.
    /// </summary>
    public static bool AnyChanged(EntityEntry entry, IReadOnlyList<TraitMap> traits, IReadOnlyList<IProperty> allProperties)
    {
        var modifiedButEqual = false;
        foreach (var trait in traits)
        {
            var property = entry.Property(trait.Property);
            if (!property.IsModified)
            {
                continue;
            }

            if (!trait.Comparer.Equals(property.OriginalValue, property.CurrentValue))
            {
                return true;
            }

            modifiedButEqual = true;
        }

        return modifiedButEqual && HasNoRealOriginals(entry, allProperties);
    }

    private static bool HasNoRealOriginals(EntityEntry entry, IReadOnlyList<IProperty> properties)
    {
        foreach (var metadata in properties)
        {
            var property = entry.Property(metadata);
            if (!property.IsModified || !metadata.GetValueComparer().Equals(property.OriginalValue, property.CurrentValue))
            {
                return false;
            }
        }

        return true;
    }
}
