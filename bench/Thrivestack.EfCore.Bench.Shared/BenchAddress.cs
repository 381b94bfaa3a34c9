namespace Thrivestack.EfCore.Bench;

/// <summary>A user's address, an owned type (OwnsOne) whose city is a trait.</summary>
public sealed class BenchAddress
{
    public string? City { get; set; }

    public string? Street { get; set; }
}
