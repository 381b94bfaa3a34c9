using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Sample.Model;

/// <summary>The app's own context: its tables, the ThriveStack mapping and the outbox table.</summary>
internal sealed class AppDbContext(DbContextOptions<AppDbContext> options) : DbContext(options)
{
    public DbSet<AppUser> Users => Set<AppUser>();

    public DbSet<Workspace> Workspaces => Set<Workspace>();

    public DbSet<WorkspaceMember> WorkspaceMembers => Set<WorkspaceMember>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        // The outbox table is part of this model, so the migrations create it with the app's tables.
        modelBuilder.AddThrivestackOutbox();

        modelBuilder.Entity<AppUser>(user =>
        {
            user.HasIndex(u => u.Email).IsUnique();

            // An insert sends an identify; an update sends one only when a mapped trait changed.
            // LoginCount is not mapped, so a sign-in sends nothing.
            user.ToThrivestackUser(u => u.Id)
                .HasTrait(u => u.Email, "email")
                .HasTrait(u => u.FirstName, ThrivestackTraits.FirstName)
                .HasTrait(u => u.LastName, ThrivestackTraits.LastName)
                .HasTrait(u => u.JobTitle, ThrivestackTraits.EmploymentTitle)
                .HasTrait(u => u.Phones, ThrivestackTraits.Phone);
        });

        modelBuilder.Entity<WorkspaceMember>(member =>
        {
            member.HasKey(m => new { m.WorkspaceId, m.UserId });

            // Joining a workspace sends an identify for the user with context.group_id = the workspace id.
            member.ToThrivestackMembership(m => m.UserId, m => m.WorkspaceId);
        });
    }
}
