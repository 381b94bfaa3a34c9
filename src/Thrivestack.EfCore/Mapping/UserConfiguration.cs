namespace Thrivestack.EfCore.Mapping;

/// <summary>A user entity type as configured: the (possibly shadow) id property and the traits in the order they were mapped.</summary>
internal sealed class UserConfiguration(string userIdProperty)
{
    private readonly List<TraitConfiguration> traits = [];

    public string UserIdProperty { get; set; } = userIdProperty;

    public IReadOnlyList<TraitConfiguration> Traits => traits;

    public void AddTrait(string entityType, string propertyPath, string traitKey)
    {
        var existing = traits.Find(t => t.Key == traitKey);
        if (existing is null)
        {
            traits.Add(new TraitConfiguration(traitKey, propertyPath));
        }
        else if (existing.Path != propertyPath)
        {
            throw new InvalidOperationException(
                $"The trait '{traitKey}' of '{entityType}' is mapped twice, to '{existing.Path}' and to '{propertyPath}'. Map each trait key once.");
        }
    }
}
