using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>A real database for one test: SQLite here, PostgreSQL in the integration suite. Same tests, two providers.</summary>
public abstract class TestDatabase : IAsyncDisposable
{
    /// <summary>Configures the provider (connection, SQLite or Npgsql) on a builder.</summary>
    public abstract void Configure(DbContextOptionsBuilder builder);

    public DbContextOptions<TestDbContext> Options(TimeProvider? clock = null)
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        Configure(builder);
        if (clock is null)
        {
            builder.AddThrivestackIdentifyInterceptor();
        }
        else
        {
            builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(clock));
        }

        return builder.Options;
    }

    public TestDbContext CreateContext(TimeProvider? clock = null) => new(Options(clock));

    public virtual async Task CreateSchemaAsync()
    {
        await using var context = CreateContext();
        await context.Database.EnsureDeletedAsync();
        await context.Database.EnsureCreatedAsync();
    }

    public abstract ValueTask DisposeAsync();
}
