using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Thrivestack.EfCore.Bench.Capture;

/// <summary>Sets <c>PRAGMA synchronous = NORMAL</c> on every opened connection (WAL: commits need no fsync).</summary>
internal sealed class SynchronousNormal : DbConnectionInterceptor
{
    public static readonly SynchronousNormal Instance = new();

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA synchronous = NORMAL;";
        command.ExecuteNonQuery();
    }

    public override async Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        var command = connection.CreateCommand();
        await using (command.ConfigureAwait(false))
        {
            command.CommandText = "PRAGMA synchronous = NORMAL;";
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
