using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore;

namespace Thrivestack.EfCore.Tests.Infrastructure;

public sealed class AppUser
{
    public Guid Id { get; set; }

    public string Email { get; set; } = "";

    public string? FirstName { get; set; }

    public string? LastName { get; set; }

    public List<string> Phones { get; set; } = [];

    public int Age { get; set; }

    public bool Verified { get; set; }

    public DateTime? ActiveAt { get; set; }

    public int LoginCount { get; set; }

    public Address? Address { get; set; }
}

public sealed class Address
{
    public string? City { get; set; }

    public string? Street { get; set; }
}

public sealed class NumberedUser
{
    public int Id { get; set; }

    public string Email { get; set; } = "";

    public string? Name { get; set; }

    public int Version { get; set; }

    public string? Notes { get; set; }
}

public sealed class Workspace
{
    public long Id { get; set; }

    public string Name { get; set; } = "";
}

public sealed class WorkspaceMember
{
    public long Id { get; set; }

    public int UserId { get; set; }

    public NumberedUser? User { get; set; }

    public long WorkspaceId { get; set; }

    public Workspace? Workspace { get; set; }
}

public sealed class TeamMember
{
    public Guid UserId { get; set; }

    public string TeamId { get; set; } = "";

    public string Role { get; set; } = "";
}

public sealed class AuditEntry
{
    public long Id { get; set; }

    public string Text { get; set; } = "";
}

/// <summary>The model every capture test uses: Guid and identity users, memberships, owned traits.</summary>
public class TestDbContext(DbContextOptions options) : DbContext(options)
{
    public DbSet<AppUser> Users => Set<AppUser>();

    public DbSet<NumberedUser> NumberedUsers => Set<NumberedUser>();

    public DbSet<Workspace> Workspaces => Set<Workspace>();

    public DbSet<WorkspaceMember> Members => Set<WorkspaceMember>();

    public DbSet<TeamMember> TeamMembers => Set<TeamMember>();

    public DbSet<AuditEntry> Audit => Set<AuditEntry>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.AddThrivestackOutbox();

        modelBuilder.Entity<AppUser>(user =>
        {
            user.HasIndex(u => u.Email).IsUnique();
            user.OwnsOne(u => u.Address);
            user.Property<string>("Plan").HasMaxLength(20);
            user.ToThrivestackUser(u => u.Id)
                .HasTrait(u => u.Email, "email")
                .HasTrait(u => u.FirstName, ThrivestackTraits.FirstName)
                .HasTrait(u => u.LastName, ThrivestackTraits.LastName)
                .HasTrait(u => u.Phones, ThrivestackTraits.Phone)
                .HasTrait(u => u.Age, "age")
                .HasTrait(u => u.Verified, "verified")
                .HasTrait(u => u.ActiveAt, ThrivestackTraits.ActiveAt)
                .HasTrait(u => u.Address!.City, ThrivestackTraits.City)
                .HasTrait("Plan", "plan");
        });

        modelBuilder.Entity<NumberedUser>(user =>
        {
            user.Property(u => u.Version).IsConcurrencyToken();
            user.ToThrivestackUser(u => u.Id)
                .HasTrait(u => u.Email, "email")
                .HasTrait(u => u.Name, ThrivestackTraits.FullName);
        });

        modelBuilder.Entity<WorkspaceMember>().ToThrivestackMembership(m => m.UserId, m => m.WorkspaceId);

        modelBuilder.Entity<TeamMember>(member =>
        {
            member.HasKey(m => new { m.UserId, m.TeamId });
            member.ToThrivestackMembership(m => m.UserId, m => m.TeamId);
        });
    }
}
