using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Thrivestack.EfCore.Hosting;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Capture;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Capture;

/// <summary>The start-up check against a real PostgreSQL server: a shared outbox table, a missing table, no server.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresStartupCheckTests(PostgresServer server)
{
    private readonly LogCollector logs = new();

    [Fact]
    public async Task StartingAsync_TwoContextsShareOneOutboxTableOnOneDatabase_RefusesTheStart()
    {
        var connectionString = await server.CreateDatabaseAsync("thrivestack");
        using var host = BuildHost(s =>
        {
            Add<AccountDbContext>(s, connectionString);
            Add<LedgerDbContext>(s, connectionString);
        });

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());

        Assert.Contains("modelBuilder.AddThrivestackOutbox(\"thrivestack_outbox_billing\")", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartingAsync_TwoContextsOnTwoDatabasesOfOneServer_StartsAndReportsMissingTables()
    {
        var first = await server.CreateDatabaseAsync("thrivestack");
        var second = await server.CreateDatabaseAsync("thrivestack");
        using var host = BuildHost(s =>
        {
            Add<AccountDbContext>(s, first);
            Add<LedgerDbContext>(s, second);
        });

        await host.StartAsync();

        Assert.Equal(2, logs.Lines.Count(l => l.EventId.Id == 308 && l.Category.StartsWith("Thrivestack.EfCore.", StringComparison.Ordinal)));
        await host.StopAsync();
    }

    [Fact]
    public async Task StartingAsync_ServerNotListening_WarnsAndStarts()
    {
        var nowhere = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = FreeTcpPort.Find(),
            Database = "thrivestack",
            Username = "nobody",
            Timeout = 2,
        }.ToString();
        using var host = BuildHost(s => Add<AccountDbContext>(s, nowhere));

        await host.StartAsync();

        Assert.Single(logs.Lines, l => l.EventId.Id == 309 && l.Category.StartsWith("Thrivestack.EfCore.", StringComparison.Ordinal));
        await host.StopAsync();
    }

    private static void Add<TContext>(IServiceCollection services, string connectionString)
        where TContext : DbContext
    {
        services.AddDbContext<TContext>(o => o.UseNpgsql(connectionString).AddThrivestackIdentifyInterceptor());
        ThrivestackStartupCheck.Register<TContext>(services);
    }

    private IHost BuildHost(Action<IServiceCollection> register)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug).AddFilter("Microsoft", LogLevel.Warning);
        register(builder.Services);
        return builder.Build();
    }

    private sealed class Entry
    {
        public long Id { get; set; }
    }

    private sealed class LedgerDbContext(DbContextOptions<LedgerDbContext> options) : DbContext(options)
    {
        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.AddThrivestackOutbox();
            modelBuilder.Entity<Entry>();
        }
    }
}
