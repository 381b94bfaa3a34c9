using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Startup;

/// <summary>The interceptor's settings, and the warning for a process that writes events nobody here ships.</summary>
public sealed class InterceptorWiringTests : IAsyncLifetime
{
    private readonly SqliteTestDatabase database = new();
    private readonly LogCollector logs = new();

    public Task InitializeAsync() => database.CreateSchemaAsync();

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task SaveChanges_NoDispatcherRegisteredForContext_WarnsOnceWhenEventsAreWritten()
    {
        await using var services = Services(o => o.AddThrivestackIdentifyInterceptor());

        await SaveAsync(services, new AuditEntry { Text = "no event" });
        Assert.Equal(0, logs.Count(304));

        await SaveAsync(services, NewUser());
        await SaveAsync(services, NewUser());

        var warning = Assert.Single(logs.Lines, l => l.Is(304));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("AddThrivestackIdentify<TestDbContext>", warning.Message, StringComparison.Ordinal);
        Assert.Contains("DispatchedElsewhere()", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SaveChanges_DispatchedElsewhere_DoesNotWarn()
    {
        await using var services = Services(o => o.AddThrivestackIdentifyInterceptor(i => i.DispatchedElsewhere()));

        await SaveAsync(services, NewUser());

        Assert.Equal(0, logs.Count(304));
        Assert.Single(await OutboxReader.RowsAsync(database));
    }

    [Fact]
    public async Task SaveChanges_DispatcherRegisteredForContext_DoesNotWarn()
    {
        await using var services = Services(
            o => o.AddThrivestackIdentifyInterceptor(),
            s => s.AddThrivestackIdentify<TestDbContext>(o => o.ApiToken = "token"));

        await SaveAsync(services, NewUser());

        Assert.Equal(0, logs.Count(304));
    }

    [Fact]
    public async Task AddThrivestackIdentifyInterceptor_SecondCall_KeepsSettingsOfTheFirst()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 8, 0, 0, TimeSpan.Zero));
        await using var services = Services(o => o
            .AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(clock))
            .AddThrivestackIdentifyInterceptor(i => i.DispatchedElsewhere())
            .AddThrivestackIdentifyInterceptor());

        await SaveAsync(services, NewUser());

        var row = Assert.Single(await OutboxReader.RowsAsync(database));
        Assert.Equal(clock.GetUtcNow().UtcDateTime, row.CreatedAt);
        Assert.Equal(0, logs.Count(304));
        await using var scope = services.CreateAsyncScope();
        var options = scope.ServiceProvider.GetRequiredService<DbContextOptions<TestDbContext>>();
        var extension = Assert.Single(options.Extensions.OfType<ThrivestackIdentifyOptionsExtension>());
        Assert.Same(clock, extension.TimeProvider);
        Assert.True(extension.DispatchedElsewhere);
    }

    private static AppUser NewUser() => new() { Id = Guid.NewGuid(), Email = $"{Guid.NewGuid():N}@example.com" };

    private ServiceProvider Services(Action<DbContextOptionsBuilder> interceptor, Action<IServiceCollection>? more = null)
    {
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        services.AddDbContext<TestDbContext>(o =>
        {
            database.Configure(o);
            interceptor(o);
        });
        more?.Invoke(services);
        return services.BuildServiceProvider();
    }

    private static async Task SaveAsync(IServiceProvider services, object entity)
    {
        await using var scope = services.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        context.Add(entity);
        await context.SaveChangesAsync();
    }
}
