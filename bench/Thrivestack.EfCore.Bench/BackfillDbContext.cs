using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Bench;

/// <summary>The backfill scenario's application context: the bench's users, memberships and the identify outbox.</summary>
public sealed class BackfillDbContext(DbContextOptions<BackfillDbContext> options) : DbContext(options)
{
    public const string UsersTable = "Users";
    public const string MembershipsTable = "Memberships";

    public DbSet<BenchUser> Users => Set<BenchUser>();

    public DbSet<BenchMembership> Memberships => Set<BenchMembership>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.AddThrivestackOutbox();
        modelBuilder.Entity<BenchUser>(user =>
        {
            user.ToTable(UsersTable);
            user.ToThrivestackUser(u => u.Id)
                .HasTrait(u => u.Email, "email")
                .HasTrait(u => u.FirstName, ThrivestackTraits.FirstName)
                .HasTrait(u => u.LastName, ThrivestackTraits.LastName)
                .HasTrait(u => u.Phones, ThrivestackTraits.Phone)
                .HasTrait(u => u.Age, "age")
                .HasTrait(u => u.ActiveAt, ThrivestackTraits.ActiveAt);
        });
        modelBuilder.Entity<BenchMembership>(member =>
        {
            member.ToTable(MembershipsTable);
            member.HasKey(m => new { m.UserId, m.WorkspaceId });
            member.ToThrivestackMembership(m => m.UserId, m => m.WorkspaceId);
        });
    }
}
