using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Backfill;

/// <summary>
/// A backfill only enqueues: it says at its start when the process it runs in registered no dispatcher for its context
/// (as a save's warning 304 does), unless the application said another process ships the outbox, or the context was
/// made without the application's services (nothing is known then).
/// </summary>
public sealed class BackfillDispatcherCheckTests : IAsyncLifetime
{
    private readonly SqliteTestDatabase database = new();
    private readonly LogCollector logs = new();

    public async Task InitializeAsync()
    {
        await database.CreateSchemaAsync();
        await using var context = database.CreateContext();
        context.NumberedUsers.AddRange(Enumerable.Range(0, 3).Select(i => new NumberedUser { Email = $"n{i}@example.com" }));
        await context.SaveChangesAsync();
    }

    public Task DisposeAsync() => database.DisposeAsync().AsTask();

    [Fact]
    public async Task BackfillThrivestackAsync_ProcessRegisteredNoDispatcher_WarnsOnceAtItsStart()
    {
        await using var services = Services(dispatched: false);

        await BackfillAsync(services, i => { });

        var warning = Assert.Single(logs.Lines, l => l.Is(910));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Equal(
            "Backfill default enqueues identify events into the outbox of TestDbContext, but this process registered no dispatcher for it: "
            + "only a dispatcher in another process (the app) sends them, and while more than MaxPendingEvents (10000) are pending the "
            + "backfill waits for one. Add services.AddThrivestackIdentify<TestDbContext>(...) in this process, or, when another process "
            + "ships this outbox, say so with AddThrivestackIdentifyInterceptor(o => o.DispatchedElsewhere()).",
            warning.Message);
        Assert.True(logs.Lines.ToList().FindIndex(l => l.Is(900)) < logs.Lines.ToList().FindIndex(l => l.Is(910)), "The warning comes after the start line.");
    }

    [Fact]
    public async Task BackfillThrivestackAsync_DispatcherRegisteredOrElsewhereOrNoApplicationServices_SaysNothingAboutIt()
    {
        await using (var services = Services(dispatched: true))
        {
            await BackfillAsync(services, i => { }, restart: true);
        }

        await using (var services = Services(dispatched: false))
        {
            await BackfillAsync(services, i => i.DispatchedElsewhere(), restart: true);
        }

        // A context made by hand, with a logger factory but without the application's services.
        using var loggers = LoggerFactory.Create(b => b.AddProvider(logs));
        var builder = new DbContextOptionsBuilder<TestDbContext>().UseLoggerFactory(loggers);
        database.Configure(builder);
        await using (var context = new TestDbContext(builder.AddThrivestackIdentifyInterceptor().Options))
        {
            await context.BackfillThrivestackAsync(new ThrivestackBackfillOptions { Restart = true });
        }

        Assert.Equal(3, logs.Count(902));
        Assert.Equal(0, logs.Count(910));
    }

    private ServiceProvider Services(bool dispatched)
    {
        var services = new ServiceCollection().AddLogging(b => b.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        if (dispatched)
        {
            services.AddThrivestackIdentify<TestDbContext>(o => o.SendingEnabled = false);
        }

        return services.BuildServiceProvider();
    }

    private async Task BackfillAsync(ServiceProvider services, Action<ThrivestackInterceptorOptionsBuilder> interceptor, bool restart = false)
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>()
            .UseApplicationServiceProvider(services)
            .UseLoggerFactory(services.GetRequiredService<ILoggerFactory>());
        database.Configure(builder);
        await using var context = new TestDbContext(builder.AddThrivestackIdentifyInterceptor(interceptor).Options);
        var result = await context.BackfillThrivestackAsync(new ThrivestackBackfillOptions { Restart = restart });
        Assert.True(result.Completed);
    }
}
