using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>A real database for one test: SQLite here, PostgreSQL in the integration suite. Same tests, two providers.</summary>
public abstract class TestDatabase : IAsyncDisposable
{
    /// <summary>Signals every command, commit and connection close of the contexts configured by this database.</summary>
    internal DatabaseActivity Activity { get; } = new();

    /// <summary>Configures the provider (connection, SQLite or Npgsql) on a builder, and the <see cref="Activity"/> signal.</summary>
    public void Configure(DbContextOptionsBuilder builder)
    {
        ConfigureProvider(builder);
        builder.AddInterceptors(Activity);
    }

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

    /// <summary>A context that does not signal <see cref="Activity"/>: the reads of a wait on that signal must not wake it.</summary>
    internal TestDbContext CreateUnwatchedContext()
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        ConfigureProvider(builder);
        return new(builder.AddThrivestackIdentifyInterceptor().Options);
    }

    public virtual async Task CreateSchemaAsync()
    {
        await using var context = CreateContext();
        await context.Database.EnsureDeletedAsync();
        await context.Database.EnsureCreatedAsync();
    }

    /// <summary>
    /// A new, closed connection to this database, of the provider's own type: for tests that open the connection and begin
    /// the transaction themselves and hand them to a context (<c>SetDbConnection</c>, <c>UseTransaction</c>), as an app that
    /// shares them with ADO.NET or Dapper code does.
    /// </summary>
    public abstract DbConnection CreateConnection();

    public abstract ValueTask DisposeAsync();

    /// <summary>Configures the provider (connection, SQLite or Npgsql) on a builder.</summary>
    protected abstract void ConfigureProvider(DbContextOptionsBuilder builder);
}
