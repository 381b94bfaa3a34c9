using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

public sealed class PooledCaptureTests : IAsyncLifetime
{
    private readonly SqliteTestDatabase database = new();

    public Task InitializeAsync() => database.CreateSchemaAsync();

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task PooledContext_ReturnedWithAnUncommittedTransaction_NextLeaseStartsWithCleanSaveState()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddThrivestackIdentify<TestDbContext>(o => o.ApiToken = "unused");
        services.AddDbContextPool<TestDbContext>(o => database.Configure(o.AddThrivestackIdentifyInterceptor()), poolSize: 1);
        await using var provider = services.BuildServiceProvider();
        var signal = provider.GetRequiredService<OutboxSignal>();

        TestDbContext first;
        await using (var scope = provider.CreateAsyncScope())
        {
            // Rows written into a transaction that is never committed: the state waits to nudge at its commit.
            first = scope.ServiceProvider.GetRequiredService<TestDbContext>();
            await first.Database.BeginTransactionAsync();
            first.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "abandoned@example.com" });
            await first.SaveChangesAsync();
        }

        var before = signal.Version;
        await using (var scope = provider.CreateAsyncScope())
        {
            var second = scope.ServiceProvider.GetRequiredService<TestDbContext>();
            Assert.Same(first, second);
            await using var transaction = await second.Database.BeginTransactionAsync();
            second.Audit.Add(new AuditEntry { Text = "nothing for ThriveStack" });
            await second.SaveChangesAsync();
            await transaction.CommitAsync();
        }

        // The pool reset the context's save state (IResettableService): the abandoned lease's pending nudge is gone.
        Assert.Equal(before, signal.Version);
        Assert.Empty(await OutboxReader.RowsAsync(database));
    }

    [Fact]
    public async Task SaveChanges_ManyTasksThroughPooledContexts_WritesEveryEventOnceWithItsOwnValues()
    {
        await using var services = new ServiceCollection()
            .AddDbContextPool<TestDbContext>(o => database.Configure(o.AddThrivestackIdentifyInterceptor()), poolSize: 8)
            .BuildServiceProvider();

        const int tasks = 8, savesPerTask = 25;
        await Task.WhenAll(Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
        {
            for (var i = 0; i < savesPerTask; i++)
            {
                await using var scope = services.CreateAsyncScope();
                var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
                var user = new AppUser { Id = Guid.NewGuid(), Email = $"t{t}-{i}@example.com", FirstName = $"T{t}I{i}" };
                context.Users.Add(user);
                if (i % 3 == 0)
                {
                    context.NumberedUsers.Add(new NumberedUser { Email = $"n{t}-{i}@example.com", Name = $"N{t}I{i}" });
                }

                await context.SaveChangesAsync();
            }
        })));

        var rows = await OutboxReader.RowsAsync(database);
        await using var check = database.CreateContext();
        var users = await check.Users.ToDictionaryAsync(u => u.Id.ToString("D"));
        var numbered = await check.NumberedUsers.ToDictionaryAsync(u => u.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(users.Count + numbered.Count, rows.Count);
        Assert.Equal(rows.Count, rows.Select(r => r.UserId).Distinct().Count());
        foreach (var row in rows)
        {
            var traits = OutboxReader.Traits(row);
            if (users.TryGetValue(row.UserId, out var user))
            {
                Assert.Equal(user.Email, traits.GetProperty("email").GetString());
                Assert.Equal(user.FirstName, traits.GetProperty(ThrivestackTraits.FirstName).GetString());
            }
            else
            {
                Assert.Equal(numbered[row.UserId].Email, traits.GetProperty("email").GetString());
            }
        }
    }

    [Fact]
    public async Task AddDbContext_InterceptorAddedTwiceInDifferentPlaces_WritesOneEvent()
    {
        await using var services = new ServiceCollection()
            .AddDbContext<TestDbContext>(o => database.Configure(o.AddThrivestackIdentifyInterceptor()))
            .ConfigureDbContext<TestDbContext>(o => o.AddThrivestackIdentifyInterceptor())
            .BuildServiceProvider();
        await using (var scope = services.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
            context.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "once@example.com" });
            await context.SaveChangesAsync();
        }

        Assert.Single(await OutboxReader.RowsAsync(database));
    }

    [Fact]
    public async Task AddDbContextPool_ContextReturnedAfterFailedSave_NextLeaseWritesOnlyItsOwnEvent()
    {
        await using var services = new ServiceCollection()
            .AddDbContextPool<TestDbContext>(o => database.Configure(o.AddThrivestackIdentifyInterceptor()), poolSize: 1)
            .BuildServiceProvider();
        await using (var scope = services.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
            context.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "dup@example.com" });
            context.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "dup@example.com" });
            await Assert.ThrowsAsync<DbUpdateException>(() => context.SaveChangesAsync());
        }

        await using (var scope = services.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
            context.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "clean@example.com" });
            await context.SaveChangesAsync();
        }

        var row = Assert.Single(await OutboxReader.RowsAsync(database));
        Assert.Equal("clean@example.com", OutboxReader.Traits(row).GetProperty("email").GetString());
    }
}
