using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Backfill;

/// <summary>A user whose every mapped trait may be null, with a store-generated long key.</summary>
public sealed class Guest
{
    public long Id { get; set; }

    public string? Nickname { get; set; }

    public string? Email { get; set; }
}

/// <summary>
/// The test model plus <see cref="Guest"/>: Guid, identity int and identity long user keys, memberships with a
/// long key and with a composite (Guid, string) key.
/// </summary>
public sealed class BackfillDbContext(DbContextOptions<BackfillDbContext> options) : TestDbContext(options)
{
    public DbSet<Guest> Guests => Set<Guest>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        base.OnModelCreating(modelBuilder);
        modelBuilder.Entity<Guest>().ToThrivestackUser(g => g.Id).HasTrait(g => g.Nickname, "nickname").HasTrait(g => g.Email, "email");
    }
}
