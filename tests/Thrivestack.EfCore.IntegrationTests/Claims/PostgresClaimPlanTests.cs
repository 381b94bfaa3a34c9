using System.Data.Common;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.IntegrationTests.Claims;

/// <summary>
/// The claim's work follows the claim's size, not the backlog's, even when the planner's statistics are stale (a new
/// outbox, or one that changed since autovacuum last analyzed it): with them the planner once chose a bitmap scan of
/// every pending row and an anti-join that compared every pending row with every other, which stalled delivery during
/// a backfill. Nor is it JIT-compiled. Its planner settings stay inside the claim's command, which raises no notice.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresClaimPlanTests(PostgresServer server) : IAsyncLifetime
{
    private const int Limit = 100;
    private const int Users = 2_000;
    private const int RowsPerUser = 2;

    private static readonly DateTime Now = new(2026, 11, 28, 9, 30, 0, DateTimeKind.Utc);
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    private PostgresTestDatabase database = null!;

    public async Task InitializeAsync()
    {
        database = await PostgresTestDatabase.CreateAsync(server);
        await database.CreateSchemaAsync();
    }

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task Claim_BacklogTheStatisticsHaveNotSeen_ExaminesRowsInProportionToTheClaim()
    {
        await FillNeverAnalyzedBacklogAsync();

        var plan = (await ExplainClaimAsync()).GetProperty("Plan");

        // What finds the rows to claim: the heads (h), each head's oldest-row check (o) and its rows (r). The joins that lock
        // and update the picked rows by key are left out: their plan is the planner's free choice for 100 keys.
        var finding = Nodes(plan).Where(n => n.TryGetProperty("Alias", out var alias) && alias.GetString() is "h" or "o" or "r").ToList();
        Assert.Contains(finding, n => n.GetProperty("Alias").GetString() == "h");
        Assert.DoesNotContain(finding, n => n.GetProperty("Node Type").GetString()!.StartsWith("Bitmap", StringComparison.Ordinal));
        var examined = finding.Sum(RowsExamined);
        // 2,000 rows is half the backlog: a plan that reads every pending row, let alone one that compares each with every
        // other (4,000 x 4,000), goes far past it. This claim examines about 3 rows per row claimed.
        Assert.True(examined <= 20 * Limit, $"Finding the claim's {Limit} rows examined {examined:N0} rows of a {Users * RowsPerUser:N0}-row backlog.");
        Assert.Equal(Limit, plan.GetProperty("Actual Rows").GetInt64());
    }

    [Fact]
    public async Task Claim_BacklogThatGrewAfterTheLastAnalyze_ExaminesRowsInProportionToTheClaim()
    {
        // What a backfill on PostgreSQL met: autovacuum analyzed the outbox while it was nearly empty (its rows delivered and
        // deleted), and the backlog then grew to thousands. Believing the table to hold a row or two, the planner walked the
        // pending index for each picked user and joined the picked rows by comparing each with every pending row: 0.4-3 s a
        // claim for 400 rows of 10,000, and delivery stalled for a minute, until the next ANALYZE.
        await database.ExecuteAsync(
            """
            ALTER TABLE "thrivestack_outbox" SET (autovacuum_enabled = false);
            INSERT INTO "thrivestack_outbox" ("user_id", "kind", "payload", "payload_bytes", "created_at", "state", "attempts", "next_attempt_at")
            SELECT 'delivered-' || g, 0, '{"user_id":"delivered","traits":{"email":"someone@example.com"}}', 60, @due, 0, 0, @due
            FROM generate_series(1, 60000) AS g;
            DELETE FROM "thrivestack_outbox" WHERE "id" > 1;
            """,
            ("due", Now - TimeSpan.FromMinutes(1)));
        await database.ExecuteAsync("""VACUUM ANALYZE "thrivestack_outbox";""");
        await FillNeverAnalyzedBacklogAsync();

        var plan = (await ExplainClaimAsync()).GetProperty("Plan");

        // With statistics this wrong, the oldest-row check of a head and the no-older-blocked-row check of a picked row may
        // each walk the pending index from its start, up to the row: at most the rows the claim passes, once per row checked.
        // That is bounded by the claim, not the backlog (the first statement examined 405,600 rows here; this one about
        // 10,600), and lasts until the dispatcher's first full claim refreshes the statistics (PostgresStaleStatisticsTests).
        var examined = Nodes(plan).Sum(RowsExamined);
        Assert.True(examined <= 2 * Limit * Limit, $"The claim of {Limit} rows examined {examined:N0} rows of a {Users * RowsPerUser:N0}-row backlog:\n{plan}");
        Assert.Equal(Limit, plan.GetProperty("Actual Rows").GetInt64());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Claim_HeadUserWithManyNewerRows_ReadsOnlyTheRowsUpToTheClaimsLastHead(bool analyzed)
    {
        // A user whose oldest row comes first and whose thousands of newer rows come after everyone else's: reading all of a
        // head user's rows to sort them would read them all on every claim while that user is a head.
        await database.ExecuteAsync(
            $$"""
            ALTER TABLE "thrivestack_outbox" SET (autovacuum_enabled = false);
            INSERT INTO "thrivestack_outbox" ("user_id", "kind", "payload", "payload_bytes", "created_at", "state", "attempts", "next_attempt_at")
            SELECT u, 0, '{"user_id":"x"}', 15, @due, 0, 0, @due
            FROM (SELECT 'big' AS u, 0 AS o UNION ALL SELECT 'user-' || g, g FROM generate_series(1, {{Users}}) AS g
                  UNION ALL SELECT 'big', {{Users}} + g FROM generate_series(1, 4000) AS g) AS rows ORDER BY o;
            """,
            ("due", Now - TimeSpan.FromMinutes(1)));
        if (analyzed)
        {
            await database.ExecuteAsync("""ANALYZE "thrivestack_outbox";""");
        }

        var plan = (await ExplainClaimAsync()).GetProperty("Plan");

        var examined = Nodes(plan).Sum(RowsExamined);
        Assert.True(examined <= 20 * Limit, $"The claim of {Limit} rows examined {examined:N0} rows:\n{plan}");
        Assert.Equal(Limit, plan.GetProperty("Actual Rows").GetInt64());
    }

    [Fact]
    public async Task Claim_PricedAboveJitThresholds_IsNotJitCompiled()
    {
        // The planner cannot know how many rows pass the oldest-row check, so on a real backlog it priced the claim above
        // jit_above_cost and compiled it on every claim: 300 ms of LLVM for a claim that runs in 10. A session whose
        // thresholds are 0 makes every statement a candidate, whatever this small backlog's costs.
        await FillNeverAnalyzedBacklogAsync();
        const string everyStatement = "SET jit_above_cost = 0; SET jit_inline_above_cost = 0; SET jit_optimize_above_cost = 0;";

        var explained = await ExplainClaimAsync(everyStatement);

        Assert.False(explained.TryGetProperty("JIT", out var jit), $"The claim was JIT-compiled: {jit}");
        Assert.Equal(Limit, explained.GetProperty("Plan").GetProperty("Actual Rows").GetInt64());
        if (await ScalarAsync<bool>("SELECT pg_jit_available()"))
        {
            // The same query without the claim's own settings is compiled on this server: what the assertion above rules out.
            Assert.True((await ExplainClaimAsync(everyStatement, withClaimSettings: false)).TryGetProperty("JIT", out _));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Claim_OnTheApplicationsConnection_LeavesThePlannerSettingsAsTheyWereAndRaisesNoNotice(bool claimFails)
    {
        await FillNeverAnalyzedBacklogAsync();
        if (claimFails)
        {
            // The claim's UPDATE fails after its planner setting was made, in the same implicit transaction.
            await database.ExecuteAsync("""
                CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
                CREATE TRIGGER refuse_update BEFORE UPDATE ON "thrivestack_outbox" FOR EACH ROW EXECUTE FUNCTION refuse_update();
                """);
        }

        await using var context = database.CreateContext();
        await context.Database.OpenConnectionAsync();
        var connection = (NpgsqlConnection)context.Database.GetDbConnection();
        var before = await SettingsAsync(connection);
        Assert.Equal("on", before.Split(',')[0]);
        var notices = new List<string>();
        connection.Notice += (_, e) => notices.Add($"{e.Notice.Severity}: {e.Notice.MessageText}");

        var claim = new OutboxStore(context).ClaimAsync(Guid.NewGuid(), "test", Now, Now + Lease, Limit, CancellationToken.None);
        if (claimFails)
        {
            Assert.Contains("refused", (await Assert.ThrowsAsync<PostgresException>(() => claim)).MessageText, StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(Limit, (await claim).Count);
        }

        // A SET LOCAL as the command's first statement runs outside any transaction block: the server warns, on every claim.
        Assert.Empty(notices);
        Assert.Equal(System.Data.ConnectionState.Open, connection.State);
        Assert.Equal(before, await SettingsAsync(connection));
    }

    private static async Task<string> SettingsAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("SELECT current_setting('enable_bitmapscan') || ',' || current_setting('enable_seqscan') || ',' || current_setting('jit')", connection);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Pending rows of two events per user, due; autovacuum (and so autoanalyze) is off for the table.</summary>
    private Task FillNeverAnalyzedBacklogAsync() =>
        database.ExecuteAsync(
            $$"""
            ALTER TABLE "thrivestack_outbox" SET (autovacuum_enabled = false);
            INSERT INTO "thrivestack_outbox" ("user_id", "kind", "payload", "payload_bytes", "created_at", "state", "attempts", "next_attempt_at")
            SELECT 'user-' || (g % {{Users}}), 0, '{"user_id":"x"}', 15, @due, 0, 0, @due FROM generate_series(1, {{Users * RowsPerUser}}) AS g;
            """,
            ("due", Now - TimeSpan.FromMinutes(1)));

    /// <summary>
    /// The claim statement exactly as the store sends it, its query run under EXPLAIN ANALYZE in the same command, after
    /// <paramref name="sessionSettings"/>; without <paramref name="withClaimSettings"/>, the query alone.
    /// </summary>
    /// <returns>The plan's root object: its Plan and, when the query was compiled, its JIT.</returns>
    private async Task<JsonElement> ExplainClaimAsync(string? sessionSettings = null, bool withClaimSettings = true)
    {
        await using var context = database.CreateContext();
        var sql = NpgsqlDialect.Instance.ClaimSql(ModelMap.For(context.Model).RequireOutbox(), context.GetService<ISqlGenerationHelper>())!;
        var query = sql.IndexOf("WITH heads", StringComparison.Ordinal);
        Assert.True(query > 0);
        await context.Database.OpenConnectionAsync();
        if (sessionSettings is not null)
        {
            await context.Database.ExecuteSqlRawAsync(sessionSettings);
        }

        await using var command = context.Database.GetDbConnection().CreateCommand();
        command.CommandText = (withClaimSettings ? sql[..query] : string.Empty) + "EXPLAIN (ANALYZE, FORMAT JSON) " + sql[query..];
        object[] values = [Guid.NewGuid(), "test", Now + Lease, Now, Limit, Now + TimeSpan.FromMinutes(10), Now + (4 * Lease)];
        for (var i = 0; i < values.Length; i++)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = $"p{i}";
            parameter.Value = values[i];
            command.Parameters.Add(parameter);
        }

        // The claim's first statement (its planner settings) has a result of its own; the plan is the next one.
        await using var reader = await command.ExecuteReaderAsync();
        while (reader.GetName(0) != "QUERY PLAN")
        {
            Assert.True(await reader.NextResultAsync());
        }

        Assert.True(await reader.ReadAsync());
        return JsonDocument.Parse(reader.GetString(0)).RootElement[0].Clone();
    }

    private static IEnumerable<JsonElement> Nodes(JsonElement node)
    {
        yield return node;
        if (node.TryGetProperty("Plans", out var children))
        {
            foreach (var child in children.EnumerateArray().SelectMany(Nodes))
            {
                yield return child;
            }
        }
    }

    /// <summary>Rows a node read from the outbox or compared in a join, over all of its loops.</summary>
    private static long RowsExamined(JsonElement node)
    {
        var loops = node.TryGetProperty("Actual Loops", out var l) ? l.GetInt64() : 1;
        long Count(string property) => node.TryGetProperty(property, out var value) ? value.GetInt64() : 0;
        var read = node.TryGetProperty("Relation Name", out var relation) && relation.GetString() == "thrivestack_outbox"
            ? Count("Actual Rows") + Count("Rows Removed by Filter") + Count("Rows Removed by Index Recheck")
            : 0;
        return (read + Count("Rows Removed by Join Filter")) * loops;
    }
}
