namespace Thrivestack.EfCore.Mapping;

/// <summary>
/// Names of the annotations the library puts on a model. Only <see cref="Outbox"/> is a design-time annotation
/// (it marks the outbox table, which belongs in migrations); the others are runtime annotations, which EF never
/// writes into migration snapshots.
/// </summary>
internal static class ThrivestackAnnotationNames
{
    public const string Prefix = "Thrivestack:";
    public const string Outbox = Prefix + "Outbox";
    public const string RuntimeMap = Prefix + "Map";

    /// <summary>The claim statement, built once per model (a model belongs to one provider).</summary>
    public const string ClaimSql = Prefix + "ClaimSql";

    /// <summary>The provider's dialect, chosen once per model.</summary>
    public const string Dialect = Prefix + "Dialect";

    /// <summary>Runtime annotation on a user entity type: how its traits are read back from its table (<c>TraitReadBack</c>).</summary>
    public const string TraitReadBack = Prefix + "TraitReadBack";
}
