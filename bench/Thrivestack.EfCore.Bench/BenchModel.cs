using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore;

namespace Thrivestack.EfCore.Bench;

/// <summary>A typical user: mapped traits plus columns that are not traits.</summary>
public sealed class BenchUser
{
    public Guid Id { get; set; }

    public string Email { get; set; } = "";

    public string? FirstName { get; set; }

    public string? LastName { get; set; }

    public List<string> Phones { get; set; } = [];

    public int Age { get; set; }

    public DateTime? ActiveAt { get; set; }

    public int LoginCount { get; set; }
}

/// <summary>The application's context in every scenario: users and the identify outbox.</summary>
public sealed class BenchDbContext(DbContextOptions<BenchDbContext> options) : DbContext(options)
{
    public DbSet<BenchUser> Users => Set<BenchUser>();

    /// <summary>When this context's last transaction committed (set by the latency scenario's interceptor).</summary>
    public DateTimeOffset? CommittedAt { get; set; }

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.AddThrivestackOutbox();
        modelBuilder.Entity<BenchUser>(user =>
        {
            user.HasIndex(u => u.Email).IsUnique();
            user.ToThrivestackUser(u => u.Id)
                .HasTrait(u => u.Email, "email")
                .HasTrait(u => u.FirstName, ThrivestackTraits.FirstName)
                .HasTrait(u => u.LastName, ThrivestackTraits.LastName)
                .HasTrait(u => u.Phones, ThrivestackTraits.Phone)
                .HasTrait(u => u.Age, "age")
                .HasTrait(u => u.ActiveAt, ThrivestackTraits.ActiveAt);
        });
    }

    public static BenchUser NewUser(int i) => new()
    {
        Id = Guid.NewGuid(),
        Email = $"user{i}-{Guid.NewGuid():N}@example.com",
        FirstName = "Ada",
        LastName = "Lovelace",
        Phones = ["+44 20 7946 0000"],
        Age = 36,
        ActiveAt = DateTime.UtcNow,
    };
}
