using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Outbox;

/// <summary>Asks the database whether the outbox table (or the coordination table beside it) exists, with the cheapest query each provider has.</summary>
internal static class OutboxTableProbe
{
    public static Task<bool> ExistsAsync(DbContext context, OutboxTable table, CancellationToken cancellationToken) =>
        ExistsAsync(context, table.TableName, table.Schema, cancellationToken);

    public static bool Exists(DbContext context, string table, string? schema)
    {
        var connection = context.GetService<IRelationalConnection>();
        var opened = connection.Open();
        try
        {
            using var command = Build(context, connection, table, schema, out var probing);
            try
            {
                var result = command.ExecuteScalar();
                return probing || IsTrue(result);
            }
            catch (DbException) when (probing)
            {
                return false;
            }
        }
        finally
        {
            if (opened)
            {
                connection.Close();
            }
        }
    }

    public static async Task<bool> ExistsAsync(DbContext context, string table, string? schema, CancellationToken cancellationToken)
    {
        var connection = context.GetService<IRelationalConnection>();
        var opened = await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = Build(context, connection, table, schema, out var probing);
            try
            {
                var result = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                return probing || IsTrue(result);
            }
            catch (DbException) when (probing)
            {
                return false;
            }
        }
        finally
        {
            if (opened)
            {
                await connection.CloseAsync().ConfigureAwait(false);
            }
        }
    }

    private static DbCommand Build(DbContext context, IRelationalConnection connection, string table, string? schema, out bool probing)
    {
        var sql = context.GetService<ISqlGenerationHelper>();
        var command = connection.DbConnection.CreateCommand();
        command.Transaction = connection.CurrentTransaction?.GetDbTransaction();
        probing = OutboxDialect.For(context).PrepareTableProbe(command, sql, table, schema);
        return command;
    }

    private static bool IsTrue(object? value) => value switch
    {
        bool b => b,
        long l => l > 0,
        int i => i > 0,
        _ => false,
    };
}
