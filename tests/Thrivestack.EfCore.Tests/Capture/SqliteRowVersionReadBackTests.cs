using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>
/// On SQLite a token marked <c>IsRowVersion()</c> changes only when the app wrote a trigger for it: without one, a save from
/// a stale copy goes through, so an edit's traits are still read back from the row (only PostgreSQL's <c>xmin</c> and SQL
/// Server's <c>rowversion</c>, which the database itself changes on every write, make the read unnecessary).
/// </summary>
public sealed class SqliteRowVersionReadBackTests : IAsyncLifetime
{
    private readonly SqliteTestDatabase database = new();

    public async Task InitializeAsync()
    {
        await using var context = NewContext();
        await context.Database.EnsureCreatedAsync();
        context.Users.Add(new VersionedUser { Id = 1, Name = "Ada", Email = "ada@example.com" });
        await context.SaveChangesAsync();
    }

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task SaveChanges_RowVersionWithoutATriggerAndAStaleCopy_EventCarriesTheTraitsAsSaved()
    {
        await using var stale = NewContext();
        var loaded = await stale.Users.SingleAsync();
        await using (var other = NewContext())
        {
            (await other.Users.SingleAsync()).Email = "countess@example.com";
            await other.SaveChangesAsync();
        }

        loaded.Name = "Augusta";
        await stale.SaveChangesAsync();

        var last = (await OutboxReader.RowsAsync(database)).OrderBy(r => r.Id).Last();
        Assert.Equal("Augusta", OutboxReader.Traits(last).GetProperty(ThrivestackTraits.FullName).GetString());
        Assert.Equal("countess@example.com", OutboxReader.Traits(last).GetProperty("email").GetString());
    }

    private VersionedContext NewContext() =>
        new(new DbContextOptionsBuilder<VersionedContext>().UseSqlite(database.ConnectionString).AddThrivestackIdentifyInterceptor().Options);

    private sealed class VersionedUser
    {
        public int Id { get; set; }

        public string? Name { get; set; }

        public string? Email { get; set; }

        public byte[]? Version { get; set; }
    }

    private sealed class VersionedContext(DbContextOptions<VersionedContext> options) : DbContext(options)
    {
        public DbSet<VersionedUser> Users => Set<VersionedUser>();

        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.AddThrivestackOutbox();
            modelBuilder.Entity<VersionedUser>(user =>
            {
                user.Property(u => u.Id).ValueGeneratedNever();
                user.Property(u => u.Version).IsRowVersion();
                user.ToThrivestackUser(u => u.Id).HasTrait(u => u.Name, ThrivestackTraits.FullName).HasTrait(u => u.Email, "email");
            });
        }
    }
}
