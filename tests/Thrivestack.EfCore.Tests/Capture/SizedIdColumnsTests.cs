using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>
/// Where the provider sizes the outbox's id columns (SQL Server gives an indexed string nvarchar(450), MySQL's providers
/// varchar(255)), an id longer than the column gets no event and a warning instead of failing the application's save.
/// SQLite stores any length, so the columns are sized here by the model, as those providers size them.
/// </summary>
public sealed class SizedIdColumnsTests : IAsyncLifetime
{
    private const int Size = 8;

    private readonly SqliteTestDatabase database = new();
    private readonly LogCollector logs = new();

    public async Task InitializeAsync()
    {
        await using var context = NewContext();
        await context.Database.EnsureCreatedAsync();
    }

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task SaveChanges_IdsLongerThanTheSizedColumns_SavesAndLeavesTheirEventsOutWithWarnings()
    {
        await using (var context = NewContext())
        {
            Assert.Equal(Size, ModelMap.For(context.Model).RequireOutbox().MaxIdLength);
            context.Accounts.Add(new Account { Id = new string('a', Size), Email = "fits@example.com" });
            context.Accounts.Add(new Account { Id = new string('b', Size + 1), Email = "long@example.com" });
            context.Memberships.Add(new AccountMembership { AccountId = "member", GroupId = new string('g', Size + 1) });
            await context.SaveChangesAsync();
        }

        await using (var context = NewContext())
        {
            Assert.Equal(2, await context.Accounts.CountAsync());
            Assert.Equal(new string('a', Size), Assert.Single(await context.Set<OutboxMessage>().ToListAsync()).UserId);
        }

        var warnings = logs.Lines.Where(l => l.Is(302)).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.All(warnings, w => Assert.Contains($"more than {Size} characters", w.Message, StringComparison.Ordinal));
    }

    [Fact]
    public async Task EnqueueThrivestackIdentify_IdLongerThanTheSizedColumns_ThrowsNamingTheLimit()
    {
        await using var context = NewContext();

        var error = Assert.Throws<ArgumentException>(() => context.EnqueueThrivestackIdentify(new string('c', Size + 1)));

        Assert.Equal("userId", error.ParamName);
        Assert.Contains($"longer than {Size} characters", error.Message, StringComparison.Ordinal);
        context.EnqueueThrivestackIdentify(new string('c', Size), groupId: new string('g', Size));
    }

    private SizedOutboxContext NewContext() =>
        new(new DbContextOptionsBuilder<SizedOutboxContext>()
            .UseSqlite(database.ConnectionString)
            .UseLoggerFactory(LoggerFactory.Create(b => b.AddProvider(logs)))
            .AddThrivestackIdentifyInterceptor()
            .Options);

    private sealed class SizedOutboxContext(DbContextOptions<SizedOutboxContext> options) : DbContext(options)
    {
        public DbSet<Account> Accounts => Set<Account>();

        public DbSet<AccountMembership> Memberships => Set<AccountMembership>();

        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.AddThrivestackOutbox();
            modelBuilder.Entity<OutboxMessage>().Property(m => m.UserId).HasMaxLength(Size);
            modelBuilder.Entity<OutboxMessage>().Property(m => m.GroupId).HasMaxLength(Size);
            modelBuilder.Entity<Account>().ToThrivestackUser(a => a.Id).HasTrait(a => a.Email, "email");
            modelBuilder.Entity<AccountMembership>().ToThrivestackMembership(m => m.AccountId, m => m.GroupId);
        }
    }
}
