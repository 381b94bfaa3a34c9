using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Npgsql;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Claims;

/// <summary>
/// The portable claim (SQL Server, MySQL) against a rival claimer on PostgreSQL, whose READ COMMITTED behaves for an UPDATE
/// as SQL Server's READ_COMMITTED_SNAPSHOT does: the rows to update are re-checked at their latest committed version once
/// their lock is granted, but a subquery reads the snapshot taken when the statement began. A rival whose UPDATE leases
/// ada's oldest row and commits while this claim's UPDATE waits for it must still hold ada's newer row back.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PortableClaimRaceTests(PostgresServer server)
{
    [Fact]
    public async Task Claim_RivalLeasesTheUsersOlderRowDuringTheUpdate_TheNewerRowIsGivenBack()
    {
        var now = DateTime.UtcNow;
        var lease = TimeSpan.FromSeconds(30);
        var database = await PostgresTestDatabase.CreateAsync(server, portable: true);
        await database.CreateSchemaAsync();
        var (ada1, ada2, bob) = await OutboxReader.EnqueueAdaAdaBobAsync(database, now);

        // The rival's UPDATE of ada's oldest row, not yet committed (as an autocommit UPDATE is while it runs).
        await using var rival = new NpgsqlConnection(database.ConnectionString);
        await rival.OpenAsync();
        var rivalTransaction = await rival.BeginTransactionAsync();
        await using (var command = new NpgsqlCommand("UPDATE thrivestack_outbox SET lease_id = @l, lease_owner = 'rival', lease_expires_at = @e WHERE id = @id", rival, rivalTransaction))
        {
            command.Parameters.AddWithValue("l", Guid.NewGuid());
            command.Parameters.AddWithValue("e", now + lease);
            command.Parameters.AddWithValue("id", ada1);
            await command.ExecuteNonQueryAsync();
        }

        // The rival commits once this claim's UPDATE waits for the row the rival holds.
        var committer = new CommitWhenTheUpdateWaits(database.ConnectionString, rivalTransaction);
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        database.Configure(builder);
        await using var context = new TestDbContext(builder.AddThrivestackIdentifyInterceptor().AddInterceptors(committer).Options);
        Assert.Same(PortableDialect.Instance, OutboxDialect.For(context));

        var rows = await new OutboxStore(context).ClaimAsync(Guid.NewGuid(), "me", now, now + lease, 10, CancellationToken.None, TimeSpan.FromMinutes(5));
        await committer.Committed;

        Assert.True(committer.SawTheUpdateWait, "the claim's UPDATE never waited for the rival's row");
        var all = await OutboxReader.RowsAsync(database);
        Assert.Equal("rival", all.Single(r => r.Id == ada1).LeaseOwner);
        Assert.Null(all.Single(r => r.Id == ada2).LeaseId);
        Assert.Equal([bob], rows.Select(r => r.Id));
    }

    /// <summary>Commits the rival's transaction once the claim's UPDATE is seen waiting for a lock (pg_stat_activity).</summary>
    private sealed class CommitWhenTheUpdateWaits(string connectionString, NpgsqlTransaction transaction) : DbCommandInterceptor
    {
        private readonly TaskCompletionSource done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Committed => done.Task;

        public bool SawTheUpdateWait { get; private set; }

        public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            if (command.CommandText.TrimStart().StartsWith("UPDATE", StringComparison.OrdinalIgnoreCase) && !done.Task.IsCompleted)
            {
                _ = Task.Run(CommitOnceTheUpdateWaitsAsync);
            }

            return ValueTask.FromResult(result);
        }

        private async Task CommitOnceTheUpdateWaitsAsync()
        {
            try
            {
                await using var watcher = new NpgsqlConnection(connectionString);
                await watcher.OpenAsync();
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (!SawTheUpdateWait && DateTime.UtcNow < deadline)
                {
                    await using var probe = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE%'", watcher);
                    SawTheUpdateWait = (long)(await probe.ExecuteScalarAsync())! > 0;
                    if (!SawTheUpdateWait)
                    {
                        await Task.Delay(25);
                    }
                }

                await transaction.CommitAsync();
                done.SetResult();
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        }
    }
}
