using System.Data.Common;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// Inserts outbox rows with one multi-row INSERT on a given transaction. Used where EF's own batch cannot
/// carry them: rows whose user id is a store-generated key, and explicit enqueues inside a transaction.
/// </summary>
internal static class OutboxRowWriter
{
    // 50 rows x 15 columns stays under every provider's parameter limit (SQL Server: 2,100).
    private const int RowsPerCommand = 50;

    public static void Insert(DbContext context, OutboxTable table, DbTransaction transaction, IReadOnlyList<OutboxMessage> rows)
    {
        var sql = context.GetService<ISqlGenerationHelper>();
        for (var start = 0; start < rows.Count; start += RowsPerCommand)
        {
            using var command = Build(sql, table, transaction, rows, start);
            command.ExecuteNonQuery();
        }
    }

    public static async Task InsertAsync(DbContext context, OutboxTable table, DbTransaction transaction, IReadOnlyList<OutboxMessage> rows, CancellationToken cancellationToken)
    {
        var sql = context.GetService<ISqlGenerationHelper>();
        for (var start = 0; start < rows.Count; start += RowsPerCommand)
        {
            await using var command = Build(sql, table, transaction, rows, start);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static DbCommand Build(ISqlGenerationHelper sql, OutboxTable table, DbTransaction transaction, IReadOnlyList<OutboxMessage> rows, int start)
    {
        var command = transaction.Connection!.CreateCommand();
        command.Transaction = transaction;
        var text = new StringBuilder("INSERT INTO ").Append(sql.DelimitIdentifier(table.TableName, table.Schema)).Append(" (");
        var columns = table.InsertColumns;
        for (var c = 0; c < columns.Count; c++)
        {
            text.Append(c == 0 ? "" : ", ").Append(sql.DelimitIdentifier(columns[c].Name));
        }

        text.Append(") VALUES ");
        var end = Math.Min(rows.Count, start + RowsPerCommand);
        for (var r = start; r < end; r++)
        {
            text.Append(r == start ? "(" : ", (");
            for (var c = 0; c < columns.Count; c++)
            {
                var name = "p" + ((r - start) * columns.Count + c).ToString(System.Globalization.CultureInfo.InvariantCulture);
                text.Append(c == 0 ? "" : ", ").Append(sql.GenerateParameterNamePlaceholder(name));
                var value = columns[c].Property.GetGetter().GetClrValue(rows[r]);
                command.Parameters.Add(columns[c].CreateParameter(command, sql.GenerateParameterName(name), value));
            }

            text.Append(')');
        }

        command.CommandText = text.ToString();
        return command;
    }
}
