using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Interception;

/// <summary>
/// Saves whose outbox rows ride in EF's own batch (<c>AutoTransactionBehavior.Never</c>): the only saves in which EF
/// tracks our rows. A failed save must detach them at once, not leave them to the next save's clean-up, so the
/// application never finds them in its change tracker.
/// </summary>
public sealed class SaveLifecycleBatchRowTests : IAsyncLifetime
{
    private readonly SqliteTestDatabase database = new();
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 11, 30, 8, 0, 0, TimeSpan.Zero));

    public async Task InitializeAsync() => await database.CreateSchemaAsync();

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_FailedSaveWithoutAutoTransaction_LeavesNoOutboxRowTracked(bool async)
    {
        await using (var seed = NewContext())
        {
            seed.Users.Add(NewUser("taken@example.com"));
            await seed.SaveChangesAsync();
        }

        await using var context = NewContext();
        context.Database.AutoTransactionBehavior = AutoTransactionBehavior.Never;
        var user = NewUser("taken@example.com");
        context.Users.Add(user);

        if (async)
        {
            await Assert.ThrowsAsync<DbUpdateException>(() => context.SaveChangesAsync());
        }
        else
        {
            Assert.Throws<DbUpdateException>(() => context.SaveChanges());
        }

        // Looked at right after the failure, not through the next save (which would clean up leftovers itself).
        Assert.DoesNotContain(context.ChangeTracker.Entries(), e => e.Entity is OutboxMessage);
        Assert.Equal(EntityState.Added, context.Entry(user).State);

        user.Email = "free@example.com";
        await context.SaveChangesAsync();

        var rows = await OutboxReader.RowsAsync(database);
        Assert.Equal(2, rows.Count);
        Assert.Equal("free@example.com", OutboxReader.Traits(rows[1]).GetProperty("email").GetString());
    }

    private TestDbContext NewContext()
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        database.Configure(builder);
        builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(clock));
        return new TestDbContext(builder.Options);
    }

    private static AppUser NewUser(string email) => new() { Id = Guid.NewGuid(), Email = email, FirstName = "Ada" };
}
