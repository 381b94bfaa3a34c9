using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>
/// A real host with the dispatcher, a real SQLite database and the stand-in on 127.0.0.1. Options default to
/// quick test values; each test overrides what it exercises.
/// </summary>
internal sealed class DispatchHarness : IAsyncDisposable
{
    private readonly List<IHost> hosts = [];

    private DispatchHarness(TestDatabase database, ThrivestackStandIn standIn)
    {
        Database = database;
        StandIn = standIn;
    }

    public TestDatabase Database { get; }

    public ThrivestackStandIn StandIn { get; }

    public LogCollector Logs { get; } = new();

    /// <summary>The lowest level the hosts log at; <see cref="LogLevel.Trace"/> also captures HttpClient's header logging.</summary>
    public LogLevel MinimumLevel { get; set; } = LogLevel.Debug;

    public static async Task<DispatchHarness> StartAsync(TestDatabase? database = null, ThrivestackStandInOptions? standInOptions = null)
    {
        database ??= new SqliteTestDatabase();
        await database.CreateSchemaAsync();
        var standIn = await ThrivestackStandIn.StartAsync(standInOptions);
        return new DispatchHarness(database, standIn);
    }

    /// <summary>Builds (not starts) a host whose dispatcher sends to the stand-in.</summary>
    public IHost BuildHost(Action<ThrivestackOptions>? configure = null, TimeProvider? time = null, Action<IServiceCollection>? services = null) =>
        BuildCustomHost(
            builder =>
            {
                builder.Services.AddThrivestackIdentify<TestDbContext>(o => Defaults(o, configure));
                services?.Invoke(builder.Services);
            },
            time);

    /// <summary>Builds (not starts) a host with the harness's logging, database and clock; <paramref name="register"/> adds the dispatcher its own way.</summary>
    public IHost BuildCustomHost(Action<HostApplicationBuilder> register, TimeProvider? time = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders().AddProvider(Logs).SetMinimumLevel(MinimumLevel).AddFilter("Microsoft.EntityFrameworkCore", LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        if (time is not null)
        {
            builder.Services.AddSingleton(time);
        }

        builder.Services.AddDbContext<TestDbContext>(o => Database.Configure(o.AddThrivestackIdentifyInterceptor()));
        register(builder);
        var host = builder.Build();
        hosts.Add(host);
        return host;
    }

    /// <summary>The quick test values every harness host starts from, then <paramref name="configure"/>.</summary>
    public void Defaults(ThrivestackOptions o, Action<ThrivestackOptions>? configure = null)
    {
        o.Endpoint = StandIn.Endpoint;
        o.ApiToken = StandIn.ApiToken;
        o.PollInterval = TimeSpan.FromMilliseconds(200);
        o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
        o.RetryMaxDelay = TimeSpan.FromMilliseconds(200);
        o.LeaseDuration = TimeSpan.FromSeconds(30);
        o.RequestTimeout = TimeSpan.FromSeconds(5);
        configure?.Invoke(o);
    }

    public async Task<IHost> StartHostAsync(Action<ThrivestackOptions>? configure = null, TimeProvider? time = null)
    {
        var host = BuildHost(configure, time);
        await host.StartAsync();
        return host;
    }

    /// <summary>Saves users through a context of <paramref name="host"/>, so commits nudge its dispatcher.</summary>
    public static async Task SaveUsersAsync(IHost host, int count, string prefix = "user", Action<AppUser, int>? shape = null)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        for (var i = 0; i < count; i++)
        {
            var user = new AppUser { Id = Guid.NewGuid(), Email = $"{prefix}{i}@example.com", FirstName = $"{prefix}{i}" };
            shape?.Invoke(user, i);
            context.Users.Add(user);
        }

        await context.SaveChangesAsync();
    }

    /// <summary>Fills the outbox directly (no host), for drains.</summary>
    public async Task EnqueueAsync(IEnumerable<(string UserId, IReadOnlyDictionary<string, object?>? Traits)> events)
    {
        await using var context = Database.CreateContext();
        foreach (var (userId, traits) in events)
        {
            context.EnqueueThrivestackIdentify(userId, traits);
        }

        await context.SaveChangesAsync();
    }

    /// <summary>The dispatcher <paramref name="host"/> runs (its <c>ExecuteTask</c> says whether it has stopped).</summary>
    public static OutboxDispatcher<TestDbContext> Dispatcher(IHost host) =>
        host.Services.GetServices<IHostedService>().OfType<OutboxDispatcher<TestDbContext>>().Single();

    /// <summary>Leases every pending row to a dispatcher that no longer runs, as a killed process leaves them.</summary>
    public async Task LeaseToDeadDispatcherAsync(DateTime leaseExpiresAt)
    {
        await using var context = Database.CreateContext();
        await context.Set<OutboxMessage>().Where(m => m.State == OutboxRowState.Pending).ExecuteUpdateAsync(s => s
            .SetProperty(m => m.LeaseId, Guid.NewGuid())
            .SetProperty(m => m.LeaseOwner, "killed-host")
            .SetProperty(m => m.LeaseExpiresAt, leaseExpiresAt));

        // On SQLite a dispatcher holds the whole outbox (its rows carry no lease of their own): the killed one held it too.
        if (context.Database.IsSqlite())
        {
            context.Add(new BackfillCheckpoint
            {
                Name = DispatcherLeaseSql.Name,
                Entity = "thrivestack_outbox",
                UpdatedAt = leaseExpiresAt,
                LockOwner = "killed-host",
                LockExpiresAt = leaseExpiresAt,
            });
            await context.SaveChangesAsync();
        }
    }

    public async Task<List<OutboxMessage>> RowsAsync() => await OutboxReader.RowsAsync(Database);

    /// <summary>
    /// Waits (with a deadline) until the outbox satisfies <paramref name="condition"/>, reading it again each time a
    /// context of the database has done something (<see cref="TestDatabase.Activity"/>), not on a timer.
    /// </summary>
    public Task WaitForOutboxAsync(Func<List<OutboxMessage>, bool> condition, TimeSpan? timeout = null) =>
        Database.Activity.WaitUntilAsync(
            RowsAsync,
            condition,
            timeout ?? TimeSpan.FromSeconds(30),
            rows => $"The outbox did not reach the expected state: {rows.Count} rows, states {string.Join(",", rows.GroupBy(r => r.State).Select(g => $"{g.Key}={g.Count()}"))}.");

    public async ValueTask DisposeAsync()
    {
        foreach (var host in hosts)
        {
            // A host whose start failed (invalid options) cannot be stopped, only disposed.
            if (host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.IsCancellationRequested)
            {
                try
                {
                    using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await host.StopAsync(stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }

            host.Dispose();
        }

        await StandIn.DisposeAsync();
        await Database.DisposeAsync();
    }
}
