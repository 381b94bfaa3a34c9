namespace Thrivestack.EfCore.Sample.Model;

/// <summary>A user of the SaaS app. Most properties are mapped to ThriveStack traits in <see cref="AppDbContext"/>.</summary>
internal sealed class AppUser
{
    public Guid Id { get; set; }

    public string Email { get; set; } = "";

    public string FirstName { get; set; } = "";

    public string LastName { get; set; } = "";

    public string? JobTitle { get; set; }

    public List<string> Phones { get; set; } = [];

    /// <summary>Not mapped to a trait: changing it alone sends nothing to ThriveStack.</summary>
    public int LoginCount { get; set; }
}
