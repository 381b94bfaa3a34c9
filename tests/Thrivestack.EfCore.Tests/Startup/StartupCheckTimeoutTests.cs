using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Hosting;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Startup;

/// <summary>
/// The README's promise about start-up checks: a database that cannot be reached delays nothing, the checks give up
/// after 5 s with a warning. Here the database accepts the connection request and never answers: an interceptor holds
/// every connection open until it is cancelled, as a server that accepted the TCP connection and went silent would.
/// </summary>
public sealed class StartupCheckTimeoutTests : IAsyncLifetime
{
    // Generous against the promised 5 s on a busy machine; a check that never gives up fails the test here.
    private static readonly TimeSpan Abandon = TimeSpan.FromSeconds(60);

    private readonly SqliteTestDatabase database = new();
    private readonly LogCollector logs = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task StartingAsync_DatabaseNeverAnswers_GivesUpWithAWarningAndStarts()
    {
        await database.CreateSchemaAsync();
        var silent = new SilentDatabase();
        using var host = BuildHost(s =>
        {
            s.AddDbContext<TestDbContext>(o => o.UseSqlite(database.ConnectionString).AddThrivestackIdentifyInterceptor().AddInterceptors(silent));
            ThrivestackStartupCheck.Register<TestDbContext>(s);
        });
        using var abandon = new CancellationTokenSource(Abandon);

        // Without the check's own time limit the start waits until this token is cancelled, and throws.
        await host.StartAsync(abandon.Token);

        Assert.False(abandon.IsCancellationRequested, "The start-up check waited for the host's start to be abandoned instead of giving up by itself.");
        Assert.True(silent.Attempts > 0, "The check never tried to open the connection.");
        Assert.True(silent.GaveUp, "The check's connection attempt was not cancelled.");
        var warning = Assert.Single(logs.Lines, l => l.Is(309));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("TestDbContext", warning.Message, StringComparison.Ordinal);
        Assert.Contains("the database did not answer", warning.Message, StringComparison.Ordinal);
        Assert.Contains("The host starts anyway", warning.Message, StringComparison.Ordinal);
        Assert.Equal(0, logs.Count(308));
        Assert.Equal(0, logs.Count(311));
        await host.StopAsync();
    }

    private IHost BuildHost(Action<IServiceCollection> register)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug).AddFilter("Microsoft", LogLevel.Warning);
        register(builder.Services);
        return builder.Build();
    }

    /// <summary>A database that never answers: opening a connection waits until the caller cancels, then fails as a cancelled open does.</summary>
    private sealed class SilentDatabase : DbConnectionInterceptor
    {
        private int attempts;
        private int gaveUp;

        public int Attempts => Volatile.Read(ref attempts);

        public bool GaveUp => Volatile.Read(ref gaveUp) != 0;

        public override async ValueTask<InterceptionResult> ConnectionOpeningAsync(
            DbConnection connection, ConnectionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref attempts);
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                Volatile.Write(ref gaveUp, 1);
                throw;
            }

            return result;
        }

        public override InterceptionResult ConnectionOpening(DbConnection connection, ConnectionEventData eventData, InterceptionResult result) =>
            throw new InvalidOperationException("The start-up check is expected to open its connection asynchronously.");
    }
}
