using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

public sealed class OutboxHealthCheckTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan DegradedAfter = TimeSpan.FromMinutes(5);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task CheckHealth_EmptyOutbox_IsHealthy()
    {
        var host = BuildHost();
        await host.StartAsync();

        var entry = await CheckAsync(host);

        Assert.Equal(HealthStatus.Healthy, entry.Status);
        Assert.Equal(0L, entry.Data["pending"]);
    }

    [Fact]
    public async Task CheckHealth_OldestPendingOlderThanThreshold_IsDegraded()
    {
        harness.StandIn.Faults.FailNextRequests = 1_000;
        await harness.EnqueueAsync([("old", null)]);
        var clock = new WatchedClock();
        var host = BuildHost(clock);
        await host.StartAsync();

        var young = await CheckAsync(host);
        Assert.Equal(HealthStatus.Healthy, young.Status);
        Assert.Equal(1L, young.Data["pending"]);

        clock.Advance(DegradedAfter + TimeSpan.FromMinutes(1));
        var old = await CheckAsync(host);

        Assert.Equal(HealthStatus.Degraded, old.Status);
        Assert.Contains("oldest pending", old.Description);
        Assert.True((double)old.Data["oldest_pending_age_seconds"] > DegradedAfter.TotalSeconds);
    }

    [Fact]
    public async Task CheckHealth_SendingPausedForTheToken_IsDegradedUntilItResumes()
    {
        harness.StandIn.Faults.Unauthorized = true;
        await harness.EnqueueAsync([("auth", null)]);
        var host = BuildHost();
        await host.StartAsync();
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(7)), Deadline);

        var paused = await CheckAsync(host);

        Assert.Equal(HealthStatus.Degraded, paused.Status);
        Assert.Contains("paused", paused.Description);
        Assert.True(paused.Data.ContainsKey("auth_paused_since"));

        harness.StandIn.Faults.Unauthorized = false;
        await harness.StandIn.WaitUntilAsync(_ => harness.Logs.Lines.Any(l => l.Is(8)), Deadline);
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(host)).Status);
    }

    [Fact]
    public async Task CheckHealth_OutboxTableMissing_IsUnhealthyNamingTheTableAndHowToCreateIt()
    {
        await using (var context = harness.Database.CreateContext())
        {
            await context.Database.ExecuteSqlRawAsync("DROP TABLE \"thrivestack_outbox\"");
        }

        var host = BuildHost();

        var entry = await CheckAsync(host);

        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Contains("'thrivestack_outbox' does not exist", entry.Description);
        Assert.Contains("dotnet ef migrations add AddThrivestackOutbox", entry.Description);
        Assert.IsAssignableFrom<System.Data.Common.DbException>(entry.Exception);
    }

    [Fact]
    public async Task CheckHealth_OutboxUnreadableForAnotherReason_IsUnhealthySayingSo()
    {
        // The database file overwritten with something that is not a database: no table is missing, nothing can be read.
        // (Not a dropped column: SQLite reads an unknown double-quoted name as a string literal, and the read succeeds.)
        var file = new SqliteConnectionStringBuilder(((SqliteTestDatabase)harness.Database).ConnectionString).DataSource;
        SqliteConnection.ClearAllPools();
        File.Delete(file + "-wal");
        File.Delete(file + "-shm");
        await File.WriteAllBytesAsync(file, Enumerable.Repeat((byte)'x', 8192).ToArray());

        var entry = await CheckAsync(BuildHost());

        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Equal("The identify outbox cannot be read.", entry.Description);
    }

    [Fact]
    public async Task AddThrivestackOutboxCheck_NameFailureStatusAndTags_AreUsed()
    {
        await using (var context = harness.Database.CreateContext())
        {
            await context.Database.ExecuteSqlRawAsync("DROP TABLE \"thrivestack_outbox\"");
        }

        var host = harness.BuildCustomHost(builder => builder.Services.AddHealthChecks()
            .AddThrivestackOutboxCheck<TestDbContext>("identify-outbox", HealthStatus.Degraded, ["ready", "outbox"]));

        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        var entry = Assert.Single(report.Entries, e => e.Key == "identify-outbox").Value;
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Contains("does not exist", entry.Description);
        Assert.Equal(["outbox", "ready"], entry.Tags.Order());
        var onlyReady = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(r => r.Tags.Contains("ready"));
        Assert.Single(onlyReady.Entries);
    }

    [Fact]
    public void AddThrivestackOutboxCheck_NonPositiveThreshold_Throws()
    {
        var builder = new ServiceCollection().AddHealthChecks();

        Assert.Throws<ArgumentOutOfRangeException>(() => builder.AddThrivestackOutboxCheck<TestDbContext>(degradedAfter: TimeSpan.Zero));
        Assert.Throws<ArgumentNullException>(() => ((IHealthChecksBuilder)null!).AddThrivestackOutboxCheck<TestDbContext>());
    }

    [Fact]
    public async Task CheckHealth_WithoutTheDispatcher_ReadsTheOutbox()
    {
        await harness.EnqueueAsync([("monitored", null)]);
        var host = harness.BuildCustomHost(builder => builder.Services.AddHealthChecks().AddThrivestackOutboxCheck<TestDbContext>(degradedAfter: DegradedAfter));

        var entry = await CheckAsync(host);

        Assert.Equal(HealthStatus.Healthy, entry.Status);
        Assert.Equal(1L, entry.Data["pending"]);
    }

    private IHost BuildHost(TimeProvider? clock = null) =>
        harness.BuildHost(time: clock, services: services => services.AddHealthChecks().AddThrivestackOutboxCheck<TestDbContext>(degradedAfter: DegradedAfter));

    private static async Task<HealthReportEntry> CheckAsync(IHost host)
    {
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        return report.Entries["thrivestack-outbox"];
    }
}
