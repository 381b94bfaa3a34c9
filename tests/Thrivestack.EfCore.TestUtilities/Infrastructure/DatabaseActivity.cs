using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>
/// An interceptor on every context of one test database that signals whenever a context ran a command, committed a
/// transaction or closed its connection: the moments after which the outbox can look different. Waits re-read the
/// outbox on this signal instead of on a timer.
/// </summary>
internal sealed class DatabaseActivity : IDbCommandInterceptor, IDbTransactionInterceptor, IDbConnectionInterceptor
{
    private TaskCompletionSource next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the next activity after this property was read: read it before looking at the database.</summary>
    public Task Next => Volatile.Read(ref next).Task;

    public DbDataReader ReaderExecuted(DbCommand command, CommandExecutedEventData eventData, DbDataReader result)
    {
        Signal();
        return result;
    }

    public ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken cancellationToken = default)
    {
        Signal();
        return ValueTask.FromResult(result);
    }

    public int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
    {
        Signal();
        return result;
    }

    public ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        Signal();
        return ValueTask.FromResult(result);
    }

    public object? ScalarExecuted(DbCommand command, CommandExecutedEventData eventData, object? result)
    {
        Signal();
        return result;
    }

    public ValueTask<object?> ScalarExecutedAsync(DbCommand command, CommandExecutedEventData eventData, object? result, CancellationToken cancellationToken = default)
    {
        Signal();
        return ValueTask.FromResult(result);
    }

    public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => Signal();

    public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Signal();
        return Task.CompletedTask;
    }

    // The dispatcher runs its idle statements (the SQLite claim among them) on the connection through ADO.NET, which no
    // command interceptor sees; they are over once EF closes the connection.
    public void ConnectionClosed(DbConnection connection, ConnectionEndEventData eventData) => Signal();

    public Task ConnectionClosedAsync(DbConnection connection, ConnectionEndEventData eventData)
    {
        Signal();
        return Task.CompletedTask;
    }

    public void Signal() =>
        Interlocked.Exchange(ref next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>
    /// Reads with <paramref name="read"/> until <paramref name="condition"/> holds, again after each activity, and throws
    /// a <see cref="TimeoutException"/> described by <paramref name="describe"/> once <paramref name="timeout"/> has passed.
    /// </summary>
    public async Task<T> WaitUntilAsync<T>(Func<Task<T>> read, Func<T, bool> condition, TimeSpan timeout, Func<T, string> describe)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var changed = Next;
            var value = await read();
            if (condition(value))
            {
                return value;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException(describe(value));
            }

            await changed.WaitAsync(left).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }
}
