using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.DrainProcess;

/// <summary>A context with nothing but the outbox: all a dispatcher process needs.</summary>
public sealed class DrainContext(DbContextOptions<DrainContext> options) : DbContext(options)
{
    protected override void OnModelCreating(ModelBuilder modelBuilder) => modelBuilder.AddThrivestackOutbox();
}
