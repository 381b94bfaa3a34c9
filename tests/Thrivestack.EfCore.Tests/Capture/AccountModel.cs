using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>A user with a string key (any length the application allows) and numeric traits JSON may not hold.</summary>
public sealed class Account
{
    public string Id { get; set; } = "";

    public string Email { get; set; } = "";

    public double Score { get; set; }

    public float? Rating { get; set; }
}

public sealed class AccountMembership
{
    public long Id { get; set; }

    public string AccountId { get; set; } = "";

    public string GroupId { get; set; } = "";
}

public sealed class AccountDbContext(DbContextOptions<AccountDbContext> options) : DbContext(options)
{
    public DbSet<Account> Accounts => Set<Account>();

    public DbSet<AccountMembership> Memberships => Set<AccountMembership>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.AddThrivestackOutbox();
        modelBuilder.Entity<Account>()
            .ToThrivestackUser(a => a.Id)
            .HasTrait(a => a.Email, "email")
            .HasTrait(a => a.Score, "score")
            .HasTrait(a => a.Rating, "rating");
        modelBuilder.Entity<AccountMembership>().ToThrivestackMembership(m => m.AccountId, m => m.GroupId);
    }
}
