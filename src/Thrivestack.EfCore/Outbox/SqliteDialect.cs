using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// SQLite: one writer at a time, so the dispatcher claims by reading under an outbox-wide lease, waits inside SQLite
/// for the app's write lock, and the backfill reads a chunk before it takes the write lock when the AUTOINCREMENT
/// sequence can tell that no event was written in between.
/// </summary>
internal sealed class SqliteDialect : OutboxDialect
{
    public const string ProviderName = "Microsoft.EntityFrameworkCore.Sqlite";

    public static readonly SqliteDialect Instance = new();

    private SqliteDialect()
    {
    }

    public override int MaxParameters => 32_766;

    /// <summary>Microsoft.Data.Sqlite has no asynchronous I/O: its async methods run the statement on the caller's thread.</summary>
    public override bool BlocksOnAsync => true;

    /// <summary>
    /// SQLite finds each named parameter by a linear search of the statement's names, so binding costs the square of
    /// the parameters per statement: 1,000 rows (2,000 parameters) took milliseconds to bind, more than ten statements
    /// of 100 rows take to prepare.
    /// </summary>
    public override int MaxRowsPerInsert => 100;

    /// <summary>
    /// Wait inside SQLite (short sleeps) while the app holds the write lock, instead of taking SQLITE_BUSY and
    /// Microsoft.Data.Sqlite's 150 ms retry sleeps.
    /// </summary>
    public override string? ConnectionSetUp => "PRAGMA busy_timeout = 5000;";

    public override string? StatisticsSql(OutboxTable table, ISqlGenerationHelper sql) => CountPendingSql(table, sql);

    public override DispatcherLeaseSql? OutboxLease(OutboxTable table, IEntityType? coordination, ISqlGenerationHelper sql) =>
        new(table, coordination?.GetTableName(), coordination?.GetSchema(), sql);

    public override bool PrepareTableProbe(DbCommand command, ISqlGenerationHelper sql, string table, string? schema)
    {
        command.CommandText = $"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = {sql.GenerateParameterNamePlaceholder("name")}";
        AddParameter(command, sql.GenerateParameterName("name"), table);
        return false;
    }

    /// <summary>
    /// Whether the outbox is a table with AUTOINCREMENT, whose sequence tells that no event was written between a read
    /// and the write lock. Without it (a table made by other means) every chunk reads under the lock.
    /// </summary>
    public override async Task<bool> CanReadBeforeLockAsync(DbContext context, OutboxTable table, CancellationToken cancellationToken)
    {
        await using var command = context.Database.GetDbConnection().CreateCommand();
        command.CommandText = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '" + Quote(table.TableName) + "'";
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string sql
            && sql.Contains("AUTOINCREMENT", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The AUTOINCREMENT sequence; it never goes back.</summary>
    public override string OutboxSequenceSql(OutboxTable table) =>
        "SELECT seq FROM sqlite_sequence WHERE name = '" + Quote(table.TableName) + "'";

    private static string Quote(string name) => name.Replace("'", "''", StringComparison.Ordinal);
}
