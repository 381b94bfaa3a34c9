namespace Thrivestack.EfCore.Mapping;

/// <summary>Names of the model annotations that carry the mapping; plain strings, so migrations snapshot them.</summary>
internal static class ThrivestackAnnotationNames
{
    public const string Prefix = "Thrivestack:";
    public const string UserId = Prefix + "UserId";
    public const string Traits = Prefix + "Traits";
    public const string MembershipUserId = Prefix + "MembershipUserId";
    public const string MembershipGroupId = Prefix + "MembershipGroupId";
    public const string Outbox = Prefix + "Outbox";
    public const string RuntimeMap = Prefix + "Map";

    /// <summary>The claim statement, built once per model (a model belongs to one provider).</summary>
    public const string ClaimSql = Prefix + "ClaimSql";
}
