using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Capture;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Startup;

/// <summary>
/// <c>Database.EnsureThrivestackOutboxCreated()</c> for applications that use <c>EnsureCreated</c>: their database
/// already has tables, so <c>EnsureCreated</c> never adds the outbox. Run on SQLite here and on PostgreSQL.
/// </summary>
public abstract class OutboxCreationTests : IAsyncLifetime
{
    protected TestDatabase Database { get; private set; } = null!;

    /// <summary>A query whose single column <c>Value</c> lists the index names of <c>thrivestack_outbox</c>.</summary>
    protected abstract string OutboxIndexQuery { get; }

    public async Task InitializeAsync()
    {
        Database = await CreateDatabaseAsync();

        // The application's schema from before it added ThriveStack.
        var builder = new DbContextOptionsBuilder<LegacyDbContext>();
        Database.Configure(builder);
        await using var legacy = new LegacyDbContext(builder.Options);
        await legacy.Database.EnsureDeletedAsync();
        await legacy.Database.EnsureCreatedAsync();
    }

    public async Task DisposeAsync() => await Database.DisposeAsync();

    protected abstract Task<TestDatabase> CreateDatabaseAsync();

    [Fact]
    public async Task EnsureThrivestackOutboxCreatedAsync_DatabaseCreatedWithoutOutbox_CreatesTableAndIndexesOnce()
    {
        await using (var context = NewContext())
        {
            Assert.False(await context.Database.EnsureCreatedAsync(), "EnsureCreated leaves an existing database alone");
            Assert.True(await context.Database.EnsureThrivestackOutboxCreatedAsync());
            Assert.False(await context.Database.EnsureThrivestackOutboxCreatedAsync());
            Assert.Equal(
                ["ix_thrivestack_outbox_delivered", "ix_thrivestack_outbox_pending", "ix_thrivestack_outbox_pending_user"],
                (await context.Database.SqlQueryRaw<string>(OutboxIndexQuery).ToListAsync()).Where(n => n.StartsWith("ix_", StringComparison.Ordinal)).Order());
            context.Accounts.Add(new Account { Id = "ada", Email = "ada@example.com" });
            await context.SaveChangesAsync();
        }

        await using (var context = NewContext())
        {
            var row = Assert.Single(await context.Set<OutboxMessage>().ToListAsync());
            Assert.Equal("ada", row.UserId);
        }
    }

    [Fact]
    public void EnsureThrivestackOutboxCreated_DatabaseCreatedWithoutOutbox_CreatesTableOnce()
    {
        using var context = NewContext();
        Assert.True(context.Database.EnsureThrivestackOutboxCreated());
        Assert.False(context.Database.EnsureThrivestackOutboxCreated());
        context.Accounts.Add(new Account { Id = "grace", Email = "grace@example.com" });
        context.SaveChanges();
        Assert.Equal("grace", Assert.Single(context.Set<OutboxMessage>().AsNoTracking().ToList()).UserId);
    }

    [Fact]
    public async Task EnsureThrivestackOutboxCreatedAsync_OutboxFromBeforeTheBackfillTable_AddsTheBackfillTable()
    {
        await using var context = NewContext();
        Assert.True(await context.Database.EnsureThrivestackOutboxCreatedAsync());

        // A database whose outbox predates the coordination table (backfill checkpoints, SQLite's outbox lease).
        await context.Database.ExecuteSqlRawAsync("DROP TABLE thrivestack_backfill");
        Assert.True(await context.Database.EnsureThrivestackOutboxCreatedAsync());
        Assert.False(await context.Database.EnsureThrivestackOutboxCreatedAsync());

        Assert.Empty(await context.Set<BackfillCheckpoint>().ToListAsync());
    }

    [Fact]
    public async Task EnsureThrivestackOutboxCreatedAsync_ModelWithoutOutbox_ThrowsNamingTheFix()
    {
        var builder = new DbContextOptionsBuilder<LegacyDbContext>();
        Database.Configure(builder);
        await using var legacy = new LegacyDbContext(builder.Options);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => legacy.Database.EnsureThrivestackOutboxCreatedAsync());
        Assert.Contains("AddThrivestackOutbox()", error.Message, StringComparison.Ordinal);
    }

    private AccountDbContext NewContext()
    {
        var builder = new DbContextOptionsBuilder<AccountDbContext>();
        Database.Configure(builder);
        builder.AddThrivestackIdentifyInterceptor();
        return new AccountDbContext(builder.Options);
    }

    private sealed class LegacyDbContext(DbContextOptions<LegacyDbContext> options) : DbContext(options)
    {
        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.Entity<Account>().ToTable("Accounts");
            modelBuilder.Entity<AccountMembership>().ToTable("Memberships");
        }
    }
}
