using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Testing;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Claims;

/// <summary>
/// Autovacuum analyzes an outbox when it sees it changed, often while it is nearly empty; a burst then brings thousands of
/// rows, and PostgreSQL plans claims for a table of a row or two until autovacuum's next ANALYZE, a minute or more later
/// (a 1,000,000-user backfill stalled for that minute). A full claim of more rows than the planner believes the table
/// holds makes the dispatcher refresh the statistics itself.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresStaleStatisticsTests(PostgresServer server) : PostgresSchemaTests(server)
{
    private const int Users = 2_000;

    [Theory]
    [InlineData(0)]
    [InlineData(20_000)]
    public async Task Dispatcher_BacklogPastWhatTheStatisticsSay_RefreshesThemOnceAndDeliversEverything(int deliveredRowsKept)
    {
        // Delivered rows kept (DeliveredRetention) count in the table's statistics, not in its pending index's.
        await Database.ExecuteAsync(
            $$"""
            ALTER TABLE "thrivestack_outbox" SET (autovacuum_enabled = false);
            INSERT INTO "thrivestack_outbox" ("user_id", "kind", "payload", "payload_bytes", "created_at", "state", "attempts", "next_attempt_at", "delivered_at")
            SELECT 'kept-' || g, 0, '{"user_id":"kept"}', 18, now(), 1, 0, now(), now() FROM generate_series(1, {{deliveredRowsKept}}) AS g;
            INSERT INTO "thrivestack_outbox" ("user_id", "kind", "payload", "payload_bytes", "created_at", "state", "attempts", "next_attempt_at")
            VALUES ('first', 0, '{"user_id":"first","timestamp":"2026-12-01T09:30:00Z"}', 54, now(), 0, 0, now());
            """);
        await Database.ExecuteAsync("""VACUUM ANALYZE "thrivestack_outbox";""");
        Assert.Equal(1, await PlannerRowsAsync());
        await Database.ExecuteAsync(
            $$"""
            INSERT INTO "thrivestack_outbox" ("user_id", "kind", "payload", "payload_bytes", "created_at", "state", "attempts", "next_attempt_at")
            SELECT 'user-' || g, 0, '{"user_id":"user-' || g || '","timestamp":"2026-12-01T09:30:00Z"}', 60, now(), 0, 0, now()
            FROM generate_series(1, {{Users}}) AS g;
            """);

        await using var standIn = await ThrivestackStandIn.StartAsync();
        var logs = new LogCollector();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
        builder.Services.AddDbContext<TestDbContext>(Database.Configure);
        builder.Services.AddThrivestackIdentify<TestDbContext>(o =>
        {
            o.Endpoint = standIn.Endpoint;
            o.ApiToken = standIn.ApiToken;
            o.CaptureRunsElsewhere = true;
        });
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            await standIn.WaitForEventsAsync(Users + 1, TimeSpan.FromSeconds(60));
        }
        finally
        {
            await host.StopAsync();
        }

        // The refresh is ANALYZE: the planner now knows the table held the backlog, and it ran once (at most once a minute).
        // The host's stop waits for a refresh still running.
        Assert.True(await PlannerRowsAsync() >= 400, "The planner's statistics were not refreshed.");
        var refreshed = Assert.Single(logs.Lines, l => l.EventId.Id == 41);
        Assert.Contains("counted 1 pending rows", refreshed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Lines, l => l.EventId.Id is 42 or 43);
    }

    [Fact]
    public async Task AnalyzeAsync_RoleThatDoesNotOwnTheOutbox_LeavesTheStatisticsAndDoesNotThrow()
    {
        // Apps often run as a role that may read and write the tables but does not own them (migrations run as another).
        var role = $"thrivestack_app_{Guid.NewGuid():N}";
        await Database.ExecuteAsync(
            $$"""
            CREATE ROLE {{role}} LOGIN PASSWORD 'app';
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {{role}};
            GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {{role}};
            """);
        try
        {
            var asApp = new NpgsqlConnectionStringBuilder(Database.ConnectionString) { Username = role, Password = "app" }.ConnectionString;
            await using var context = new TestDbContext(new DbContextOptionsBuilder<TestDbContext>().UseNpgsql(asApp).Options);
            var before = await PlannerRowsAsync();

            // What the dispatcher reads to tell whether the server refreshed them (log 41) or skipped the table (log 43).
            Assert.Equal(before, await new OutboxStore(context).AnalyzeAsync(CancellationToken.None));

            Assert.Equal(before, await PlannerRowsAsync());
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await Database.ExecuteAsync($"DROP OWNED BY {role}; DROP ROLE {role};");
        }
    }

    private async Task<double> PlannerRowsAsync()
    {
        await using var connection = new NpgsqlConnection(Database.ConnectionString);
        await connection.OpenAsync();
        // The claims' estimate: the pending index's row count.
        await using var command = new NpgsqlCommand("SELECT reltuples::float8 FROM pg_class WHERE relname = 'ix_thrivestack_outbox_pending'", connection);
        return (double)(await command.ExecuteScalarAsync())!;
    }
}
