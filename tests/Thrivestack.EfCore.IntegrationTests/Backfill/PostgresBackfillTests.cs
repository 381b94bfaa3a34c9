using System.Data.Common;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Backfill;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Backfill;

/// <summary>The backfill suite of the fast tests, on a real PostgreSQL server.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresBackfillTests(PostgresServer server) : BackfillTests
{
    [Fact]
    public async Task BackfillThrivestackAsync_UsersWithTableSplitOwnedTraits_EachChunkReadsOneChunkNotEveryRowBeforeIt()
    {
        // EF joins the owned Address (same table) to the chunk's raw SQL. Without the limit inside that SQL, PostgreSQL
        // merge-joined the table from its first row to the chunk's key on every chunk: quadratic, under the outbox lock.
        const int users = 3_000;
        const int chunk = 100;
        await using (var context = PlainContext())
        {
            context.Users.AddRange(Enumerable.Range(0, users).Select(i => new AppUser
            {
                Id = Guid.NewGuid(),
                Email = $"owned{i}@example.com",
                Address = new Address { City = $"City{i}" },
            }));
            await context.SaveChangesAsync();
            await context.Database.ExecuteSqlRawAsync("ANALYZE \"Users\"");
        }

        var plans = new ExplainChunkReads("Users");
        var result = await RunWithAsync(plans, new ThrivestackBackfillOptions { ChunkSize = chunk }, new Progress<ThrivestackBackfillProgress>());
        Assert.Equal(users, result.UsersEnqueued);

        // The middle chunk's read as the backfill ran it: rows of "Users" visited by every scan of its plan.
        var plan = plans.Plans[plans.Plans.Count / 2];
        var visited = RowsVisited(plan.GetProperty("Plan"), "Users");
        Assert.True(visited <= 3 * chunk, $"The middle chunk's read visited {visited} rows of \"Users\" for a chunk of {chunk}:\n{plan}");
    }

    [Fact]
    public async Task BackfillThrivestackAsync_DispatcherTransactionHoldsOutboxRows_ChunksGoOnBesideIt()
    {
        // A claim or an acknowledgement holds outbox rows (and the table's ROW EXCLUSIVE lock) until it commits. A chunk
        // that locked the whole table waited for each of them; a busy dispatcher starved the backfill.
        await using (var context = PlainContext())
        {
            context.Users.AddRange(Enumerable.Range(0, 30).Select(i => new AppUser { Id = Guid.NewGuid(), Email = $"beside{i}@example.com" }));
            context.EnqueueThrivestackIdentify("claimed-user");
            await context.SaveChangesAsync();
        }

        await using var dispatcher = PlainContext();
        await using var claim = await dispatcher.Database.BeginTransactionAsync();
        Assert.Equal(1, await dispatcher.Database.ExecuteSqlRawAsync("UPDATE thrivestack_outbox SET lease_owner = 'held' WHERE user_id = 'claimed-user'"));

        var result = await RunWithAsync(new NoInterception(), new ThrivestackBackfillOptions { ChunkSize = 10 }, new Progress<ThrivestackBackfillProgress>())
            .WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(result.Completed);
        Assert.Equal(30, result.UsersEnqueued);
        await claim.RollbackAsync();
    }

    [Fact]
    public Task BackfillThrivestackAsync_EditSavedInAmbientTransactionAroundTheChunkRead_NeverLeavesStaleTraits() =>
        EditSavedInAmbientTransactionAroundTheChunkReadAsync();

    protected override async Task<TestDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);

    private static double RowsVisited(JsonElement node, string table)
    {
        var own = node.TryGetProperty("Relation Name", out var relation) && relation.GetString() == table
            ? node.GetProperty("Actual Rows").GetDouble() * node.GetProperty("Actual Loops").GetDouble()
            : 0;
        return own + (node.TryGetProperty("Plans", out var children) ? children.EnumerateArray().Sum(c => RowsVisited(c, table)) : 0);
    }

    private sealed class NoInterception : DbCommandInterceptor;

    /// <summary>
    /// Explains (with ANALYZE) each chunk read of <paramref name="table"/> after a key on the backfill's own connection and
    /// transaction, with its parameters, just before the read runs: the plan the read gets with the chunk's settings.
    /// </summary>
    private sealed class ExplainChunkReads(string table) : DbCommandInterceptor
    {
        public List<JsonElement> Plans { get; } = [];

        public override async ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            if (command.CommandText.Contains($"FROM \"{table}\" WHERE", StringComparison.Ordinal))
            {
                await using var explain = command.Connection!.CreateCommand();
                explain.Transaction = command.Transaction;
                explain.CommandText = "EXPLAIN (ANALYZE, FORMAT JSON) " + command.CommandText;
                foreach (DbParameter parameter in command.Parameters)
                {
                    var copy = explain.CreateParameter();
                    copy.ParameterName = parameter.ParameterName;
                    copy.DbType = parameter.DbType;
                    copy.Value = parameter.Value;
                    explain.Parameters.Add(copy);
                }

                using var document = JsonDocument.Parse((string)(await explain.ExecuteScalarAsync(cancellationToken))!);
                Plans.Add(document.RootElement[0].Clone());
            }

            return result;
        }
    }
}
