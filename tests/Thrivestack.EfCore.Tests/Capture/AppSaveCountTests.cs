using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>
/// A save counts as in progress in the application's <see cref="OutboxSignal"/> from the interceptor's start of it until
/// it ends, however it ends, so that a backfill's chunks on SQLite let it go first. With EF's automatic change detection
/// (the default) that is every save, one that captures nothing included: it takes SQLite's write lock too. The count is
/// read at the save's own command, as a backfill chunk would see it.
/// </summary>
public sealed class AppSaveCountTests : IAsyncLifetime
{
    private readonly SqliteTestDatabase database = new();

    public Task InitializeAsync() => database.CreateSchemaAsync();

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_CapturingSave_CountedDuringItsCommandAndNotAfter(bool async)
    {
        var probe = new CountAtCommand("INSERT INTO \"Users\"");
        await using var provider = Services(probe);
        await using var scope = provider.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        context.Users.Add(NewUser("counted@example.com"));

        await SaveAsync(context, async);

        Assert.Equal([1], probe.Seen);
        Assert.Equal(0, probe.Signal!.SavesInProgress);
        Assert.Single(await OutboxReader.RowsAsync(database));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_UniqueKeyViolation_EndsTheCount(bool async)
    {
        var probe = new CountAtCommand("INSERT INTO \"Users\"");
        await using var provider = Services(probe);
        await SeedUserAsync(provider, "taken@example.com");
        probe.Seen.Clear();
        await using var scope = provider.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        context.Users.Add(NewUser("taken@example.com"));

        await Assert.ThrowsAsync<DbUpdateException>(() => SaveAsync(context, async));

        Assert.Equal([1], probe.Seen);
        Assert.Equal(0, probe.Signal!.SavesInProgress);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_CancelledInItsCommand_EndsTheCount(bool async)
    {
        var probe = new CountAtCommand("INSERT INTO \"Users\"");
        await using var provider = Services(probe);
        await using var scope = provider.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        context.Users.Add(NewUser("cancelled@example.com"));
        using var cancellation = new CancellationTokenSource();

        // Async: the caller's token, cancelled as the command starts; sync: the command cancelled from elsewhere.
        probe.Then = async ? cancellation.Cancel : () => throw new OperationCanceledException("The command was cancelled.");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            if (async)
            {
                await context.SaveChangesAsync(cancellation.Token);
            }
            else
            {
                context.SaveChanges();
            }
        });

        Assert.Equal([1], probe.Seen);
        Assert.Equal(0, probe.Signal!.SavesInProgress);
        Assert.Empty(await OutboxReader.RowsAsync(database));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_EntityNotMapped_CountedToo(bool async)
    {
        var probe = new CountAtCommand("INSERT INTO \"Audit\"");
        await using var provider = Services(probe);
        await using var scope = provider.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        context.Audit.Add(new AuditEntry { Text = "nothing for ThriveStack" });

        await SaveAsync(context, async);

        Assert.Equal([1], probe.Seen);
        Assert.Equal(0, probe.Signal!.SavesInProgress);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_UpdateOfUnmappedColumnOnly_CountedToo(bool async)
    {
        var probe = new CountAtCommand("UPDATE \"Users\"");
        await using var provider = Services(probe);
        var id = await SeedUserAsync(provider, "loaded@example.com");
        await using var scope = provider.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        var user = await context.Users.SingleAsync(u => u.Id == id);
        user.LoginCount++;

        await SaveAsync(context, async);

        Assert.Equal([1], probe.Seen);
        Assert.Equal(0, probe.Signal!.SavesInProgress);
        Assert.Single(await OutboxReader.RowsAsync(database));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChangesAsync_RefusedByAppInterceptorWithoutEfReportingIt_CountEndsWithTheContext(bool pooled)
    {
        // Thrown in SavingChanges, before EF's try block: EF reports no failure, so only the context's end (disposed, or
        // returned to its pool) ends the save the library began counting.
        await using var provider = Services(pooled, new RefuseEverySave());
        var signal = provider.GetRequiredService<OutboxSignal>();
        await using (var scope = provider.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
            context.Users.Add(NewUser("refused@example.com"));

            await Assert.ThrowsAsync<InvalidOperationException>(() => context.SaveChangesAsync());

            Assert.Equal(1, signal.SavesInProgress);
        }

        Assert.Equal(0, signal.SavesInProgress);
    }

    private static Task SaveAsync(TestDbContext context, bool async)
    {
        if (async)
        {
            return context.SaveChangesAsync();
        }

        context.SaveChanges();
        return Task.CompletedTask;
    }

    private static AppUser NewUser(string email) => new() { Id = Guid.NewGuid(), Email = email, FirstName = "Ada" };

    private static async Task<Guid> SeedUserAsync(ServiceProvider provider, string email)
    {
        await using var scope = provider.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        var user = NewUser(email);
        context.Users.Add(user);
        await context.SaveChangesAsync();
        return user.Id;
    }

    private ServiceProvider Services(CountAtCommand probe)
    {
        var provider = Services(pooled: false, probe);
        probe.Signal = provider.GetRequiredService<OutboxSignal>();
        return provider;
    }

    /// <summary>The application's services with the dispatcher's registration (and so its signal), and the context with the interceptor and then <paramref name="interceptor"/>.</summary>
    private ServiceProvider Services(bool pooled, IInterceptor interceptor)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddThrivestackIdentify<TestDbContext>(o => o.ApiToken = "unused");
        void Configure(DbContextOptionsBuilder o) => database.Configure(o.AddThrivestackIdentifyInterceptor().AddInterceptors(interceptor));
        if (pooled)
        {
            services.AddDbContextPool<TestDbContext>(Configure, poolSize: 1);
        }
        else
        {
            services.AddDbContext<TestDbContext>(Configure);
        }

        return services.BuildServiceProvider();
    }

    /// <summary>Reads the saves in progress as a command containing <c>statement</c> starts (EF's own commands of the save), then does <see cref="Then"/>.</summary>
    private sealed class CountAtCommand(string statement) : CommandWatcher
    {
        public OutboxSignal? Signal { get; set; }

        public List<int> Seen { get; } = [];

        public Action? Then { get; set; }

        protected override void Executing(DbCommand command)
        {
            if (command.CommandText.Contains(statement, StringComparison.Ordinal))
            {
                Seen.Add(Signal!.SavesInProgress);
                Then?.Invoke();
            }
        }
    }

    /// <summary>An application interceptor, after this library's, that refuses every save.</summary>
    private sealed class RefuseEverySave : SaveChangesInterceptor
    {
        public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("The application refuses this save.");
    }
}
