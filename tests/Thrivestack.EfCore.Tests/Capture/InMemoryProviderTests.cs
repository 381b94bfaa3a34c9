using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
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
    public async Task EnsureThrivestackOutboxCreated_InMemoryProvider_DoesNothingAsEnsureCreated()
    {
        // An app's start-up code (EnsureCreated, then the outbox) run by its tests on InMemory must not fail the host.
        await using var context = new TestDbContext(InMemoryOptions());

        Assert.True(await context.Database.EnsureCreatedAsync());
        Assert.False(await context.Database.EnsureThrivestackOutboxCreatedAsync());
        Assert.False(context.Database.EnsureThrivestackOutboxCreated());
    }

    [Fact]
    public async Task EnqueueThrivestackIdentify_InMemoryProvider_DoesNothingAsSavesCapture()
    {
        await using var context = new TestDbContext(InMemoryOptions());

        context.EnqueueThrivestackIdentify("ada", new Dictionary<string, object?> { ["email"] = "ada@example.com" });
        await context.EnqueueThrivestackIdentifyAsync("bob", groupId: "w1");
        await using (var transaction = await context.Database.BeginTransactionAsync())
        {
            // InMemory ignores transactions (with a warning EF turns into an error unless told otherwise); no row either way.
            context.EnqueueThrivestackIdentify("cyd");
        }

        Assert.Empty(context.ChangeTracker.Entries());
        Assert.Equal(0, await context.SaveChangesAsync());
        Assert.Throws<ArgumentException>(() => context.EnqueueThrivestackIdentify(""));
    }

    [Fact]
    public async Task Host_InMemoryContextWithDispatcherAndHealthCheck_StartsQuietlyIdlesAndReportsHealthy()
    {
        // As an app's tests run it: the app's registrations stay, the context is swapped for InMemory. (A context type of its
        // own: its model is built here, with this host's logs, whatever other tests built before.)
        var logs = new LogCollector();
        var database = "thrivestack-" + Guid.NewGuid().ToString("N");
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
        builder.Services.AddDbContext<HostedDbContext>(o => o.UseInMemoryDatabase(database).AddThrivestackIdentifyInterceptor());
        builder.Services.AddThrivestackIdentify<HostedDbContext>(o =>
        {
            o.Endpoint = new Uri("https://127.0.0.1:1/api/identify");
            o.ApiToken = "unused";
        });
        builder.Services.AddHealthChecks().AddThrivestackOutboxCheck<HostedDbContext>();
        using var host = builder.Build();

        await host.StartAsync();
        await logs.WaitForAsync(l => l.Is(44), TimeSpan.FromSeconds(30));
        await using (var scope = host.Services.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<HostedDbContext>();
            context.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "ada@example.com" });
            await context.SaveChangesAsync();
        }

        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        await host.StopAsync();

        Assert.Equal(HealthStatus.Healthy, report.Status);
        Assert.Contains("Microsoft.EntityFrameworkCore.InMemory", Assert.Single(report.Entries).Value.Description, StringComparison.Ordinal);
        var startup = Assert.Single(logs.Lines, l => l.Is(314));
        Assert.Equal(LogLevel.Information, startup.Level);
        Assert.Contains("Microsoft.EntityFrameworkCore.InMemory", startup.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Lines, l => l.Level >= LogLevel.Error);
        Assert.DoesNotContain(logs.Lines, l => l.Is(1));
    }

    private static DbContextOptions<TestDbContext> InMemoryOptions() =>
        new DbContextOptionsBuilder<TestDbContext>()
            .UseInMemoryDatabase("thrivestack-" + Guid.NewGuid().ToString("N"))
            .ConfigureWarnings(w => w.Ignore(InMemoryEventId.TransactionIgnoredWarning))
            .AddThrivestackIdentifyInterceptor()
            .Options;

    private sealed class HostedDbContext(DbContextOptions<HostedDbContext> options) : TestDbContext(options);
}
