using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Thrivestack.EfCore.Mapping;

/// <summary>
/// Resolves the configured mapping (<see cref="MappingConfiguration"/>) against a finalized model into the
/// <see cref="ModelMap"/> the interceptor uses, and checks it with messages that say what to fix.
/// </summary>
internal static class MappingResolver
{
    /// <summary>Checks the mapping when the model is built, so mistakes fail at start, not on the first save.</summary>
    public static void Validate(IModel model) => Resolve(model, withOutbox: false);

    public static ModelMap Resolve(IModel model) => Resolve(model, withOutbox: true);

    private static ModelMap Resolve(IModel model, bool withOutbox)
    {
        var configuration = MappingConfiguration.Find(model);
        var outbox = model.GetEntityTypes().FirstOrDefault(e => e.FindAnnotation(ThrivestackAnnotationNames.Outbox) is not null);
        if (configuration is null)
        {
            return outbox is null ? ModelMap.Empty : throw CompiledModel(outbox);
        }

        var maxIdLength = outbox is null ? ThrivestackModelBuilderExtensions.MaxIdLength : OutboxTable.MaxIdLengthOf(outbox);
        var users = new Dictionary<IEntityType, UserMap>();
        var ownedTraits = new Dictionary<IEntityType, OwnedTraitMap>();
        var memberships = new Dictionary<IEntityType, MembershipMap>();
        RequireEntityTypes(model, configuration.UserTypes, "ToThrivestackUser");
        RequireEntityTypes(model, configuration.MembershipTypes, "ToThrivestackMembership");
        foreach (var entityType in model.GetEntityTypes())
        {
            if (Inherited(entityType, t => configuration.FindUser(t.Name)) is { } user)
            {
                var traits = Inherited(entityType, t => configuration.FindUser(t.Name) is { Traits.Count: > 0 } u ? u.Traits : null) ?? [];
                var map = new UserMap(
                    entityType,
                    Id(entityType, user.UserIdProperty, "ToThrivestackUser", "user id", maxIdLength),
                    traits.Select(t => Trait(entityType, t)).ToArray());
                users[entityType] = map;
                foreach (var group in map.Traits.Where(t => t.IsOwned).GroupBy(t => t.Property.DeclaringType))
                {
                    var ownedType = (IEntityType)group.Key;
                    ownedTraits[ownedType] = new OwnedTraitMap(ownedType, map, group.ToArray());
                }
            }

            if (Inherited(entityType, t => configuration.FindMembership(t.Name)) is { } membership)
            {
                memberships[entityType] = new MembershipMap(
                    entityType,
                    Id(entityType, membership.UserIdProperty, "ToThrivestackMembership", "user id", maxIdLength),
                    Id(entityType, membership.GroupIdProperty, "ToThrivestackMembership", "group id", maxIdLength));
            }
        }

        if (outbox is null && (users.Count > 0 || memberships.Count > 0))
        {
            var mapped = users.Keys.Concat(memberships.Keys).First();
            throw new InvalidOperationException(
                $"'{mapped.DisplayName()}' is mapped for ThriveStack, but the model has no identify outbox. Call modelBuilder.AddThrivestackOutbox() in OnModelCreating and add a migration.");
        }

        // Without SQL type mappings (EF's InMemory provider) there is no table to write: capture nothing.
        if (!withOutbox || outbox?.FindPrimaryKey()?.Properties[0].FindTypeMapping() is not RelationalTypeMapping)
        {
            return ModelMap.Empty;
        }

        return new ModelMap(users, memberships, ownedTraits, new OutboxTable(outbox));
    }

    private static InvalidOperationException CompiledModel(IEntityType outbox) =>
        new($"The model that holds '{outbox.DisplayName()}' was not built by OnModelCreating (it is a compiled model, from 'dotnet ef dbcontext optimize' or UseModel), "
            + "and compiled models do not keep the ThriveStack mapping (ToThrivestackUser, HasTrait, ToThrivestackMembership). "
            + "Remove UseModel(...) and the compiled model from this context's options, so that EF builds its model from OnModelCreating.");

    private static void RequireEntityTypes(IModel model, IEnumerable<string> names, string method)
    {
        foreach (var name in names)
        {
            if (model.FindEntityType(name) is null)
            {
                throw new InvalidOperationException(
                    $"{method} maps '{name}', but '{name}' is no longer an entity type of the model (was it ignored or made owned afterwards?). Remove the mapping or keep the entity type.");
            }
        }
    }

    private static T? Inherited<T>(IEntityType entityType, Func<IEntityType, T?> find)
        where T : class
    {
        for (var type = entityType; type is not null; type = type.BaseType)
        {
            if (find(type) is { } found)
            {
                return found;
            }
        }

        return null;
    }

    private static IdMap Id(IEntityType entityType, string name, string method, string role, int maxLength)
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

        return new IdMap(property, property.GetValueConverter(), maxLength);
    }

    private static TraitMap Trait(IEntityType userType, TraitConfiguration trait)
    {
        var parts = trait.Path.Split('.');
        var navigations = new List<INavigation>();
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
        var clr = Nullable.GetUnderlyingType(property.ClrType) ?? property.ClrType;
        var converter = TraitKind(clr) is null ? property.GetValueConverter() : null;
        return new TraitMap(trait.Key, navigations, property, kind, converter, property.GetValueComparer());
    }

    private static Type ProviderType(IProperty property)
    {
        var clr = Nullable.GetUnderlyingType(property.ClrType) ?? property.ClrType;
        if (IdMap.IsSupported(clr))
        {
            return clr;
        }

        var provider = property.GetValueConverter()?.ProviderClrType;
        return provider is null ? clr : Nullable.GetUnderlyingType(provider) ?? provider;
    }

    private static Type ProviderTypeForTrait(IProperty property)
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
