using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Hosting;
using Thrivestack.EfCore.Tests.Capture;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Startup;

/// <summary>
/// The start-up check of dispatched contexts, registered by hand as <c>AddThrivestackIdentify</c> does, without
/// the dispatcher itself: these tests are about what the host says at start.
/// </summary>
public sealed class StartupCheckTests : IAsyncLifetime
{
    private readonly SqliteTestDatabase database = new();
    private readonly LogCollector logs = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task StartingAsync_ContextWithoutInterceptor_WarnsWithTheLineToAdd()
    {
        await database.CreateSchemaAsync();
        using var host = BuildHost(s => AddTestContext(s, database.ConnectionString, interceptor: false));

        await host.StartAsync();

        var warning = Assert.Single(logs.Lines, l => l.Is(305));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains(".AddThrivestackIdentifyInterceptor()", warning.Message, StringComparison.Ordinal);
        Assert.Contains("TestDbContext", warning.Message, StringComparison.Ordinal);
        await host.StopAsync();
    }

    [Fact]
    public async Task StartingAsync_CaptureRunsElsewhere_DoesNotWarnAboutTheInterceptor()
    {
        await database.CreateSchemaAsync();
        using var host = BuildHost(s =>
        {
            AddTestContext(s, database.ConnectionString, interceptor: false);
            s.Configure<ThrivestackOptions>(ThrivestackRegistration.OptionsName<TestDbContext>(), o => o.CaptureRunsElsewhere = true);
        });

        await host.StartAsync();

        Assert.Equal(0, logs.Count(305));
        await host.StopAsync();
    }

    [Fact]
    public async Task StartingAsync_WiredContextWithTable_LogsNothingAboveDebug()
    {
        await database.CreateSchemaAsync();
        using var host = BuildHost(s => AddTestContext(s, database.ConnectionString, interceptor: true));

        await host.StartAsync();

        Assert.DoesNotContain(logs.Lines, l => l.Category.StartsWith("Thrivestack.EfCore.", StringComparison.Ordinal) && l.Level >= LogLevel.Information);
        await host.StopAsync();
    }

    [Fact]
    public async Task StartingAsync_OutboxTableMissing_LogsErrorNamingBothFixesAndStarts()
    {
        using var host = BuildHost(s => AddTestContext(s, database.ConnectionString, interceptor: true));

        await host.StartAsync();

        var error = Assert.Single(logs.Lines, l => l.Is(308));
        Assert.Equal(LogLevel.Error, error.Level);
        Assert.Contains("dotnet ef migrations add AddThrivestackOutbox", error.Message, StringComparison.Ordinal);
        Assert.Contains("Database.Migrate()", error.Message, StringComparison.Ordinal);
        Assert.Contains("Database.EnsureThrivestackOutboxCreated()", error.Message, StringComparison.Ordinal);
        await host.StopAsync();
    }

    [Fact]
    public async Task StartingAsync_BackfillTableMissing_LogsErrorNamingTheFixesAndStarts()
    {
        await database.CreateSchemaAsync();
        await using (var connection = new SqliteConnection(database.ConnectionString))
        {
            await connection.OpenAsync();
            await using var drop = connection.CreateCommand();
            drop.CommandText = "DROP TABLE thrivestack_backfill";
            await drop.ExecuteNonQueryAsync();
        }

        using var host = BuildHost(s => AddTestContext(s, database.ConnectionString, interceptor: true));

        await host.StartAsync();

        var error = Assert.Single(logs.Lines, l => l.Is(313));
        Assert.Equal(LogLevel.Error, error.Level);
        Assert.Contains("thrivestack_backfill", error.Message, StringComparison.Ordinal);
        Assert.Contains("Database.EnsureThrivestackOutboxCreated()", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, logs.Count(308));
        await host.StopAsync();
    }

    [Fact]
    public async Task StartingAsync_ModelWithoutOutbox_LogsErrorNamingAddThrivestackOutbox()
    {
        using var host = BuildHost(s =>
        {
            s.AddDbContext<PlainDbContext>(o => o.UseSqlite(database.ConnectionString).AddThrivestackIdentifyInterceptor());
            ThrivestackStartupCheck.Register<PlainDbContext>(s);
        });

        await host.StartAsync();

        var error = Assert.Single(logs.Lines, l => l.Is(307));
        Assert.Equal(LogLevel.Error, error.Level);
        Assert.Contains("modelBuilder.AddThrivestackOutbox()", error.Message, StringComparison.Ordinal);
        await host.StopAsync();
    }

    [Fact]
    public async Task Dispatcher_ModelWithoutOutbox_StaysIdleAfterTheStartupErrorInsteadOfFailingOverAndOver()
    {
        using var host = BuildHost(s =>
        {
            s.AddDbContext<PlainDbContext>(o => o.UseSqlite(database.ConnectionString).AddThrivestackIdentifyInterceptor());
            s.AddThrivestackIdentify<PlainDbContext>(o =>
            {
                o.Endpoint = new Uri("https://127.0.0.1:1/api/identify");
                o.ApiToken = "unused";
            });
        });

        await host.StartAsync();
        var idle = await logs.WaitForAsync(l => l.Is(44), TimeSpan.FromSeconds(30));
        await host.StopAsync();

        Assert.Equal(LogLevel.Information, idle.Level);
        Assert.Single(logs.Lines, l => l.Is(307));
        Assert.Equal(0, logs.Count(30));
        Assert.Equal(0, logs.Count(1));
    }

    [Fact]
    public async Task StartingAsync_DatabaseUnreachable_WarnsAndStarts()
    {
        var missing = new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(Path.GetTempPath(), $"thrivestack-missing-{Guid.NewGuid():N}", "app.db"),
            Mode = SqliteOpenMode.ReadWrite,
            Pooling = false,
        }.ToString();
        using var host = BuildHost(s => AddTestContext(s, missing, interceptor: true));

        await host.StartAsync();

        Assert.Single(logs.Lines, l => l.Is(309));
        Assert.Equal(0, logs.Count(308));
        await host.StopAsync();
    }

    [Fact]
    public async Task StartingAsync_SendingDisabled_SaysSoOnce()
    {
        await database.CreateSchemaAsync();
        using var host = BuildHost(s =>
        {
            AddTestContext(s, database.ConnectionString, interceptor: true);
            s.Configure<ThrivestackOptions>(ThrivestackRegistration.OptionsName<TestDbContext>(), o => o.SendingEnabled = false);
        });

        await host.StartAsync();

        var line = Assert.Single(logs.Lines, l => l.Is(306));
        Assert.Equal(LogLevel.Information, line.Level);
        Assert.Contains("SendingEnabled", line.Message, StringComparison.Ordinal);
        await host.StopAsync();
    }

    [Fact]
    public async Task StartingAsync_TwoContextsShareOneOutboxTable_RefusesTheStartWithTheFix()
    {
        await database.CreateSchemaAsync();
        using var host = BuildHost(s =>
        {
            AddAccountContext(s, database.ConnectionString);
            AddBillingContext(s, database.ConnectionString);
        });

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());

        Assert.Contains("AccountDbContext", error.Message, StringComparison.Ordinal);
        Assert.Contains("BillingDbContext", error.Message, StringComparison.Ordinal);
        Assert.Contains("modelBuilder.AddThrivestackOutbox(\"thrivestack_outbox_billing\")", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartingAsync_TwoContextsOnDifferentDatabases_Starts()
    {
        await database.CreateSchemaAsync();
        await using var other = new SqliteTestDatabase();
        using var host = BuildHost(s =>
        {
            AddAccountContext(s, database.ConnectionString);
            AddBillingContext(s, other.ConnectionString);
        });

        await host.StartAsync();
        await host.StopAsync();
    }

    private static void AddTestContext(IServiceCollection services, string connectionString, bool interceptor)
    {
        services.AddDbContext<TestDbContext>(o =>
        {
            o.UseSqlite(connectionString);
            if (interceptor)
            {
                o.AddThrivestackIdentifyInterceptor();
            }
        });
        ThrivestackStartupCheck.Register<TestDbContext>(services);
    }

    private static void AddAccountContext(IServiceCollection services, string connectionString)
    {
        services.AddDbContext<AccountDbContext>(o => o.UseSqlite(connectionString).AddThrivestackIdentifyInterceptor());
        ThrivestackStartupCheck.Register<AccountDbContext>(services);
    }

    private static void AddBillingContext(IServiceCollection services, string connectionString)
    {
        services.AddDbContext<BillingDbContext>(o => o.UseSqlite(connectionString).AddThrivestackIdentifyInterceptor());
        ThrivestackStartupCheck.Register<BillingDbContext>(services);
    }

    private IHost BuildHost(Action<IServiceCollection> register)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug).AddFilter("Microsoft", LogLevel.Warning);
        register(builder.Services);
        return builder.Build();
    }

    private sealed class Invoice
    {
        public long Id { get; set; }
    }

    private sealed class PlainDbContext(DbContextOptions<PlainDbContext> options) : DbContext(options)
    {
        protected override void OnModelCreating(ModelBuilder modelBuilder) => modelBuilder.Entity<Invoice>();
    }

    private sealed class BillingDbContext(DbContextOptions<BillingDbContext> options) : DbContext(options)
    {
        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.AddThrivestackOutbox();
            modelBuilder.Entity<Invoice>();
        }
    }
}
