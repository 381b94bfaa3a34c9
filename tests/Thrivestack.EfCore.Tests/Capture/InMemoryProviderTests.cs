using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>EF's InMemory provider has no SQL: the library must stay out of the way (no atomicity is proven here).</summary>
public sealed class InMemoryProviderTests
{
    [Fact]
    public async Task SaveChanges_InMemoryProvider_SavesMappedAndUnmappedEntitiesAndWarnsOnce()
    {
        var logs = new LogCollector();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        var options = new DbContextOptionsBuilder<TestDbContext>()
            .UseInMemoryDatabase("thrivestack-" + Guid.NewGuid().ToString("N"))
            .UseLoggerFactory(factory)
            .AddThrivestackIdentifyInterceptor()
            .Options;
        var user = new AppUser { Id = Guid.NewGuid(), Email = "ada@example.com" };

        await using (var context = new TestDbContext(options))
        {
            context.Users.Add(user);
            context.Audit.Add(new AuditEntry { Text = "signed up" });
            await context.SaveChangesAsync();
        }

        await using (var context = new TestDbContext(options))
        {
            var loaded = await context.Users.SingleAsync();
            loaded.Email = "ada@example.org";
            context.SaveChanges();
            Assert.Equal("ada@example.org", (await context.Users.AsNoTracking().SingleAsync()).Email);
            Assert.Equal(1, await context.Audit.CountAsync());
            Assert.Empty(context.Set<OutboxMessage>());
        }

        var warning = Assert.Single(logs.Lines, l => l.Is(301));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("InMemory", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EnsureThrivestackOutboxCreatedAsync_InMemoryProvider_ThrowsNamingTheProvider()
    {
        var options = new DbContextOptionsBuilder<TestDbContext>()
            .UseInMemoryDatabase("thrivestack-" + Guid.NewGuid().ToString("N"))
            .AddThrivestackIdentifyInterceptor()
            .Options;
        await using var context = new TestDbContext(options);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => context.Database.EnsureThrivestackOutboxCreatedAsync());

        Assert.Contains("InMemory", error.Message, StringComparison.Ordinal);
    }
}
