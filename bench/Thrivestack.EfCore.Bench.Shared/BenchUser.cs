namespace Thrivestack.EfCore.Bench;

/// <summary>A typical SaaS user: seven mapped traits (one an array, one in an owned type) and a few columns that are not traits.</summary>
public sealed class BenchUser
{
    public Guid Id { get; set; }

    public string Email { get; set; } = "";

    public string? FirstName { get; set; }

    public string? LastName { get; set; }

    public List<string> Phones { get; set; } = [];

    public int Age { get; set; }

    public DateTime? ActiveAt { get; set; }

    // Not traits: an update that only touches these must not produce an event.
    public int LoginCount { get; set; }

    public DateTime? LastSeenAt { get; set; }

    public string? Notes { get; set; }

    public BenchAddress Address { get; set; } = new();
}
