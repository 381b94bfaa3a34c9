using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Bench;

/// <summary>
/// The application's context in every bench, capture and delivery alike: users, their workspace memberships and the
/// identify outbox. The capture benchmarks compare it with and without the interceptor; the outbox table is part of
/// the model in both cases.
/// </summary>
public sealed class BenchDbContext(DbContextOptions<BenchDbContext> options) : DbContext(options)
{
    public const string UsersTable = "Users";
    public const string MembershipsTable = "Memberships";

    public DbSet<BenchUser> Users => Set<BenchUser>();

    public DbSet<BenchMembership> Memberships => Set<BenchMembership>();

    /// <summary>When this context's last transaction committed (set by the latency scenario's interceptor).</summary>
    public DateTimeOffset? CommittedAt { get; set; }

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.AddThrivestackOutbox();
        modelBuilder.Entity<BenchUser>(user =>
        {
            user.ToTable(UsersTable);
            user.HasIndex(u => u.Email).IsUnique();
            user.OwnsOne(u => u.Address);
            user.ToThrivestackUser(u => u.Id)
                .HasTrait(u => u.Email, "email")
                .HasTrait(u => u.FirstName, ThrivestackTraits.FirstName)
                .HasTrait(u => u.LastName, ThrivestackTraits.LastName)
                .HasTrait(u => u.Phones, ThrivestackTraits.Phone)
                .HasTrait(u => u.Age, "age")
                .HasTrait(u => u.ActiveAt, ThrivestackTraits.ActiveAt)
                .HasTrait(u => u.Address.City, ThrivestackTraits.City);
        });
        modelBuilder.Entity<BenchMembership>(member =>
        {
            member.ToTable(MembershipsTable);
            member.HasKey(m => new { m.UserId, m.WorkspaceId });
            member.ToThrivestackMembership(m => m.UserId, m => m.WorkspaceId);
        });
    }
}
