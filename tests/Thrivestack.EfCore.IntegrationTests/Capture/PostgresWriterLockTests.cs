using System.Data;
using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Npgsql;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Capture;

/// <summary>
/// On PostgreSQL a backfill chunk holds the outbox's writer lock exclusively, and every transaction that writes events
/// holds it shared. Rows that ride in EF's own batch (AutoTransactionBehavior.Never, explicit enqueues outside a
/// transaction) take it before EF's commands, hold it through them and give it back when the save ends.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresWriterLockTests(PostgresServer server) : PostgresSchemaTests(server)
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task SaveChanges_RowsInEfsBatch_HoldTheWriterLockThroughTheBatchAndGiveItBack(bool async, bool explicitEnqueue)
    {
        var probe = new WriterLockAtOutboxInsert(Database.ConnectionString);
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        Database.Configure(builder);
        await using (var context = new TestDbContext(builder.AddThrivestackIdentifyInterceptor().AddInterceptors(probe).Options))
        {
            if (explicitEnqueue)
            {
                context.EnqueueThrivestackIdentify("enqueued-user", new Dictionary<string, object?> { ["email"] = "e@example.com" });
            }
            else
            {
                context.Database.AutoTransactionBehavior = AutoTransactionBehavior.Never;
                context.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "never@example.com" });
            }

            if (async)
            {
                await context.SaveChangesAsync();
            }
            else
            {
                context.SaveChanges();
            }

            Assert.Equal(ConnectionState.Closed, context.Database.GetDbConnection().State);
        }

        Assert.Equal([1L], probe.HeldDuringInsert);
        Assert.Equal(0L, await WriterLocksHeldAsync(Database.ConnectionString));
        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_WriterLockFailsBeforeEfsBatch_EndsTheSaveAndTheRetryWritesOneRow(bool async)
    {
        // EF raises SavingChanges outside its own error handling: the interceptor must end the save itself.
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        Database.Configure(builder);
        await using var context = new TestDbContext(builder.AddThrivestackIdentifyInterceptor().Options);
        await context.Database.ExecuteSqlRawAsync("ALTER TABLE thrivestack_outbox RENAME TO thrivestack_outbox_away");
        context.EnqueueThrivestackIdentify("enqueued-user", new Dictionary<string, object?> { ["email"] = "e@example.com" });

        await Assert.ThrowsAnyAsync<DbException>(() => async ? context.SaveChangesAsync() : Task.FromResult(context.SaveChanges()));

        Assert.Equal(ConnectionState.Closed, context.Database.GetDbConnection().State);
        Assert.True(context.ChangeTracker.AutoDetectChangesEnabled);
        await context.Database.ExecuteSqlRawAsync("ALTER TABLE thrivestack_outbox_away RENAME TO thrivestack_outbox");
        if (async)
        {
            await context.SaveChangesAsync();
        }
        else
        {
            context.SaveChanges();
        }

        Assert.Equal("enqueued-user", Assert.Single(await OutboxReader.RowsAsync(Database)).UserId);
        Assert.Equal(0L, await WriterLocksHeldAsync(Database.ConnectionString));
    }

    /// <summary>Shared holds of the outbox's writer lock (the advisory lock of this library's key), seen from another session.</summary>
    private static async Task<long> WriterLocksHeldAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1414747202 AND objid = 'thrivestack_outbox'::regclass::oid AND mode = 'ShareLock' AND granted",
            connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Counts, from another session, the writer locks held while EF's command that inserts outbox rows runs.</summary>
    private sealed class WriterLockAtOutboxInsert(string connectionString) : DbCommandInterceptor
    {
        public List<long> HeldDuringInsert { get; } = [];

        public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
        {
            Probe(command);
            return result;
        }

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            Probe(command);
            return ValueTask.FromResult(result);
        }

        private void Probe(DbCommand command)
        {
            if (command.CommandText.Contains("INSERT INTO thrivestack_outbox", StringComparison.Ordinal))
            {
                HeldDuringInsert.Add(WriterLocksHeldAsync(connectionString).GetAwaiter().GetResult());
            }
        }
    }
}
