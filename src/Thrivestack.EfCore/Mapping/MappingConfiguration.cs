using Microsoft.EntityFrameworkCore.Metadata;

namespace Thrivestack.EfCore.Mapping;

/// <summary>
/// What <c>ToThrivestackUser</c>, <c>HasTrait</c> and <c>ToThrivestackMembership</c> said, by entity type name.
/// While <c>OnModelCreating</c> runs it is an annotation of the model (runtime annotations are only allowed on a
/// finalized model); <see cref="Detach"/> takes it out of the design-time model before migrations can see it, and
/// <see cref="Attach"/> puts it on the finalized model as a runtime annotation, which EF never writes into a migration
/// snapshot or a compiled model. So a mapping change never changes a snapshot.
/// </summary>
internal sealed class MappingConfiguration
{
    private const string AnnotationName = ThrivestackAnnotationNames.Prefix + "Mapping";

    private readonly Dictionary<string, UserConfiguration> users = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MembershipConfiguration> memberships = new(StringComparer.Ordinal);

    public IEnumerable<string> UserTypes => users.Keys;

    public IEnumerable<string> MembershipTypes => memberships.Keys;

    public static MappingConfiguration Of(IMutableModel model)
    {
        if (model.FindAnnotation(AnnotationName)?.Value is MappingConfiguration existing)
        {
            return existing;
        }

        var created = new MappingConfiguration();
        model.SetAnnotation(AnnotationName, created);
        return created;
    }

    public static MappingConfiguration? Detach(IConventionModel model) => model.RemoveAnnotation(AnnotationName)?.Value as MappingConfiguration;

    public static void Attach(IModel model, MappingConfiguration configuration) => model.SetRuntimeAnnotation(AnnotationName, configuration);

    /// <summary>
    /// The configuration of a model built from <c>OnModelCreating</c>: attached, or still an annotation when the model
    /// was built without the interceptor's conventions. <see langword="null"/> for a compiled model.
    /// </summary>
    public static MappingConfiguration? Find(IModel model) =>
        (model.FindRuntimeAnnotationValue(AnnotationName) ?? model.FindAnnotation(AnnotationName)?.Value) as MappingConfiguration;

    public UserConfiguration? FindUser(string entityType) => users.GetValueOrDefault(entityType);

    public MembershipConfiguration? FindMembership(string entityType) => memberships.GetValueOrDefault(entityType);

    public UserConfiguration SetUser(string entityType, string userIdProperty)
    {
        if (users.TryGetValue(entityType, out var user))
        {
            user.UserIdProperty = userIdProperty;
            return user;
        }

        return users[entityType] = new UserConfiguration(userIdProperty);
    }

    public void SetMembership(string entityType, string userIdProperty, string groupIdProperty) =>
        memberships[entityType] = new MembershipConfiguration(userIdProperty, groupIdProperty);
}
