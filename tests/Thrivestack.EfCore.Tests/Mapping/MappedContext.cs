using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Tests.Mapping;

/// <summary>A context whose model the test writes; public, so that generated compiled-model code can name it.</summary>
public sealed class MappedContext(DbContextOptions options, Action<ModelBuilder> configure) : DbContext(options)
{
    protected override void OnModelCreating(ModelBuilder modelBuilder) => configure(modelBuilder);
}
