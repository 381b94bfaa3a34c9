using System.Data;
using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// The outbox's writer lock (<see cref="OutboxDialect.WriterLockSql"/>) for rows that ride in EF's own batch: explicit
/// enqueues outside a transaction, and rows of saves under <c>AutoTransactionBehavior.Never</c> or an ambient
/// <c>TransactionScope</c>. <see cref="OutboxRowWriter"/> takes it in each of its INSERTs; EF's batch cannot, so it is
/// taken before EF's commands: for the rest of a transaction that already exists (the application's, or the ambient
/// one the connection enlists in), else by the session until the save ended (EF's own transaction has committed by then).
/// </summary>
internal static class BatchWriterLock
{
    public static void Take(DbContext context, SaveState state)
    {
        if (Plan(context, state) is not { } plan)
        {
            return;
        }

        var database = context.Database;
        if (database.GetDbConnection().State != ConnectionState.Open)
        {
            database.OpenConnection();
            state.ClosesConnection = true;
        }

        using var command = Command(context, plan.Statement);
        command.ExecuteNonQuery();
        state.SessionUnlock = plan.Unlock;
    }

    public static async Task TakeAsync(DbContext context, SaveState state, CancellationToken cancellationToken)
    {
        if (Plan(context, state) is not { } plan)
        {
            return;
        }

        var database = context.Database;
        if (database.GetDbConnection().State != ConnectionState.Open)
        {
            await database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            state.ClosesConnection = true;
        }

        var command = Command(context, plan.Statement);
        await using (command.ConfigureAwait(false))
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        state.SessionUnlock = plan.Unlock;
    }

    /// <summary>Gives back a session's lock and the connection it opened. A failed unlock ends with the session (a broken connection).</summary>
    public static void Release(DbContext context, SaveState state)
    {
        if (state.SessionUnlock is { } unlock)
        {
            state.SessionUnlock = null;
            try
            {
                using var command = Command(context, unlock);
                command.ExecuteNonQuery();
            }
            catch (Exception exception) when (exception is DbException or InvalidOperationException)
            {
                // The connection broke during the save: the server ended its session and the lock with it.
            }
        }

        if (state.ClosesConnection)
        {
            state.ClosesConnection = false;
            context.Database.CloseConnection();
        }
    }

    public static async Task ReleaseAsync(DbContext context, SaveState state)
    {
        if (state.SessionUnlock is { } unlock)
        {
            state.SessionUnlock = null;
            try
            {
                var command = Command(context, unlock);
                await using (command.ConfigureAwait(false))
                {
                    await command.ExecuteNonQueryAsync().ConfigureAwait(false);
                }
            }
            catch (Exception exception) when (exception is DbException or InvalidOperationException)
            {
                // As in Release.
            }
        }

        if (state.ClosesConnection)
        {
            state.ClosesConnection = false;
            await context.Database.CloseConnectionAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The statement to run now and, for a session's lock, the one that ends it; null when EF's batch carries no outbox row or the provider needs no lock.</summary>
    private static (string Statement, string? Unlock)? Plan(DbContext context, SaveState state)
    {
        if (state.Tracked.Count == 0 || state.SessionUnlock is not null)
        {
            return null;
        }

        var dialect = OutboxDialect.For(context);
        var table = ModelMap.For(context.Model).RequireOutbox();
        var sql = context.GetService<ISqlGenerationHelper>();
        if (dialect.WriterLockSql(table, sql) is not { } transactionLock)
        {
            return null;
        }

        if (context.Database.CurrentTransaction is not null || System.Transactions.Transaction.Current is not null)
        {
            return (transactionLock, null);
        }

        var (sessionLock, unlock) = dialect.SessionWriterLockSql(table, sql)!.Value;
        return (sessionLock, unlock);
    }

    private static DbCommand Command(DbContext context, string text)
    {
        var command = context.Database.GetDbConnection().CreateCommand();
        command.Transaction = context.Database.CurrentTransaction?.GetDbTransaction();
        command.CommandText = text;
        return command;
    }
}
