namespace Thrivestack.EfCore.Mapping;

/// <summary>One mapped trait as configured: the JSON key and the property path ("Email", "Address.City").</summary>
internal sealed record TraitConfiguration(string Key, string Path);
