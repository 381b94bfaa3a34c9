using System.Data.Common;
using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore.Diagnostics;
using SQLitePCL;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// Times every statement SQLite runs on the application's connections (<c>sqlite3_profile</c>), EF's and the ones the
/// dispatcher runs through ADO.NET (claim, statistics, PRAGMA) alike, waits for the write lock included.
/// </summary>
internal sealed class SqliteStatementTimer(Action<string, long> statementRan) : DbConnectionInterceptor
{
    /// <summary>Calls <paramref name="statementRan"/> with the statement's kind (<see cref="Breakdown.Kind"/>) and its duration in Stopwatch ticks.</summary>
    private readonly delegate_profile profile = (_, statement, nanoseconds) =>
        statementRan(Breakdown.Kind(statement.utf8_to_string()), nanoseconds * Stopwatch.Frequency / 1_000_000_000);

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Hook(connection);

    public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Hook(connection);
        return Task.CompletedTask;
    }

    private void Hook(DbConnection connection)
    {
        if (connection is SqliteConnection { Handle: { } handle })
        {
            raw.sqlite3_profile(handle, profile, null);
        }
    }
}
