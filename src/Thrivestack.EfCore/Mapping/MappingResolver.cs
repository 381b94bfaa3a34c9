using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;

namespace Thrivestack.EfCore.Mapping;

/// <summary>
/// Reads the Thrivestack annotations of a model and checks them, with messages that say what to fix.
/// Works on the design-time model (validation when the model is built) and on the runtime model.
/// </summary>
internal static class MappingResolver
{
    public sealed record ResolvedTrait(string Key, IReadOnlyList<IReadOnlyNavigation> Navigations, IReadOnlyProperty Property, TraitValueKind Kind);

    public sealed record ResolvedUser(IReadOnlyEntityType EntityType, IReadOnlyProperty UserId, IReadOnlyList<ResolvedTrait> Traits);

    public sealed record ResolvedMembership(IReadOnlyEntityType EntityType, IReadOnlyProperty UserId, IReadOnlyProperty GroupId);

    public sealed record Resolution(IReadOnlyList<ResolvedUser> Users, IReadOnlyList<ResolvedMembership> Memberships, IReadOnlyEntityType? Outbox);

    public static Resolution Resolve(IReadOnlyModel model)
    {
        var users = new List<ResolvedUser>();
        var memberships = new List<ResolvedMembership>();
        IReadOnlyEntityType? outbox = null;
        foreach (var entityType in model.GetEntityTypes())
        {
            if (entityType.FindAnnotation(ThrivestackAnnotationNames.Outbox) is not null)
            {
                outbox = entityType;
            }

            if (FindInherited(entityType, ThrivestackAnnotationNames.UserId) is { } userIdName)
            {
                var userId = ResolveId(entityType, userIdName, "ToThrivestackUser", "user id");
                var traits = TraitAnnotation.Parse(FindInherited(entityType, ThrivestackAnnotationNames.Traits))
                    .Select(t => ResolveTrait(entityType, t))
                    .ToArray();
                users.Add(new ResolvedUser(entityType, userId, traits));
            }
            else if (entityType.FindAnnotation(ThrivestackAnnotationNames.Traits) is not null)
            {
                throw new InvalidOperationException(
                    $"'{entityType.DisplayName()}' maps traits but is not a ThriveStack user. Call ToThrivestackUser(u => u.Id) before HasTrait.");
            }

            if (FindInherited(entityType, ThrivestackAnnotationNames.MembershipUserId) is { } memberUserId)
            {
                var groupName = FindInherited(entityType, ThrivestackAnnotationNames.MembershipGroupId)!;
                memberships.Add(new ResolvedMembership(
                    entityType,
                    ResolveId(entityType, memberUserId, "ToThrivestackMembership", "user id"),
                    ResolveId(entityType, groupName, "ToThrivestackMembership", "group id")));
            }
        }

        if (outbox is null && (users.Count > 0 || memberships.Count > 0))
        {
            var mapped = users.Select(u => u.EntityType).Concat(memberships.Select(m => m.EntityType)).First();
            throw new InvalidOperationException(
                $"'{mapped.DisplayName()}' is mapped for ThriveStack, but the model has no identify outbox. Call modelBuilder.AddThrivestackOutbox() in OnModelCreating and add a migration.");
        }

        return new Resolution(users, memberships, outbox);
    }

    private static string? FindInherited(IReadOnlyEntityType entityType, string annotation)
    {
        for (var type = entityType; type is not null; type = type.BaseType)
        {
            if (type.FindAnnotation(annotation)?.Value is string value)
            {
                return value;
            }
        }

        return null;
    }

    private static IReadOnlyProperty ResolveId(IReadOnlyEntityType entityType, string name, string method, string role)
    {
        var property = entityType.FindProperty(name)
            ?? throw new InvalidOperationException(
                $"{method} maps the {role} of '{entityType.DisplayName()}' to '{name}', but '{name}' is not a property of '{entityType.DisplayName()}'. Name a mapped property, or declare the shadow property with Property<T>(\"{name}\") first.");
        var type = ProviderType(property);
        if (!IdMap.IsSupported(type))
        {
            throw new InvalidOperationException(
                $"{method} maps the {role} of '{entityType.DisplayName()}' to '{name}' of type {property.ClrType.Name}. Ids must be string, Guid, int or long (or have a value converter to one of them).");
        }

        return property;
    }

    private static ResolvedTrait ResolveTrait(IReadOnlyEntityType userType, TraitAnnotation trait)
    {
        var parts = trait.Path.Split('.');
        var navigations = new List<IReadOnlyNavigation>();
        var current = userType;
        for (var i = 0; i < parts.Length - 1; i++)
        {
            var navigation = current.FindNavigation(parts[i]);
            if (navigation is null || navigation.IsCollection || !navigation.ForeignKey.IsOwnership || navigation.IsOnDependent)
            {
                throw new InvalidOperationException(
                    $"HasTrait maps '{trait.Key}' of '{userType.DisplayName()}' to '{trait.Path}', but '{parts[i]}' is not an owned reference of '{current.DisplayName()}'. A trait path may only go through owned references (OwnsOne).");
            }

            navigations.Add(navigation);
            current = navigation.TargetEntityType;
        }

        var name = parts[^1];
        var property = current.FindProperty(name)
            ?? throw new InvalidOperationException(
                $"HasTrait maps '{trait.Key}' of '{userType.DisplayName()}' to '{trait.Path}', but '{name}' is not a property of '{current.DisplayName()}'. Map a mapped property, or declare the shadow property with Property<T>(\"{name}\") first.");
        var kind = TraitKind(ProviderTypeForTrait(property))
            ?? throw new InvalidOperationException(
                $"HasTrait maps '{trait.Key}' of '{userType.DisplayName()}' to '{trait.Path}' of type {property.ClrType.Name}, which has no JSON form here. Traits may be strings, numbers, booleans, dates, Guids, enums or collections of strings; add a value converter for other types.");
        return new ResolvedTrait(trait.Key, navigations, property, kind);
    }

    private static Type ProviderType(IReadOnlyProperty property)
    {
        var clr = Nullable.GetUnderlyingType(property.ClrType) ?? property.ClrType;
        if (IdMap.IsSupported(clr))
        {
            return clr;
        }

        var provider = property.GetValueConverter()?.ProviderClrType;
        return provider is null ? clr : Nullable.GetUnderlyingType(provider) ?? provider;
    }

    private static Type ProviderTypeForTrait(IReadOnlyProperty property)
    {
        var clr = Nullable.GetUnderlyingType(property.ClrType) ?? property.ClrType;
        if (TraitKind(clr) is not null)
        {
            return clr;
        }

        var provider = property.GetValueConverter()?.ProviderClrType;
        return provider is null ? clr : Nullable.GetUnderlyingType(provider) ?? provider;
    }

    internal static TraitValueKind? TraitKind(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string) || type == typeof(char) || type == typeof(Guid) || type.IsEnum || type == typeof(Uri)
            || type == typeof(TimeSpan) || type == typeof(TimeOnly))
        {
            return type == typeof(string) ? TraitValueKind.String : TraitValueKind.Formattable;
        }

        if (type == typeof(bool))
        {
            return TraitValueKind.Boolean;
        }

        if (type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(byte) || type == typeof(sbyte)
            || type == typeof(uint) || type == typeof(ulong) || type == typeof(ushort) || type == typeof(decimal)
            || type == typeof(double) || type == typeof(float))
        {
            return TraitValueKind.Number;
        }

        if (type == typeof(DateTime))
        {
            return TraitValueKind.DateTime;
        }

        if (type == typeof(DateTimeOffset))
        {
            return TraitValueKind.DateTimeOffset;
        }

        if (type == typeof(DateOnly))
        {
            return TraitValueKind.DateOnly;
        }

        if (type != typeof(string) && type.GetInterfaces().Append(type).Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>) && i.GetGenericArguments()[0] == typeof(string)))
        {
            return TraitValueKind.StringArray;
        }

        return null;
    }
}
