using System.Data.Common;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Outbox;

/// <summary>An app whose outbox table was never created: what the database says, and what to tell the user instead.</summary>
internal static class MissingOutboxTable
{
    /// <summary>
    /// Whether the database says the outbox table does not exist (PostgreSQL 42P01, MySQL 42S02, SQLite's "no such table",
    /// SQL Server's "Invalid object name"), naming the table.
    /// </summary>
    public static bool Is(OutboxTable table, DbException exception) =>
        exception.Message.Contains(table.TableName, StringComparison.OrdinalIgnoreCase)
        && (exception.SqlState is "42P01" or "42S02"
            || exception.Message.Contains("no such table", StringComparison.OrdinalIgnoreCase)
            || exception.Message.Contains("Invalid object name", StringComparison.OrdinalIgnoreCase));

    /// <summary>"The identify outbox table '...' does not exist in this database", and how to create it.</summary>
    public static string Describe(OutboxTable table) =>
        $"The identify outbox table '{(table.Schema is null ? table.TableName : $"{table.Schema}.{table.TableName}")}' does not exist in this database. Create it: "
        + "'dotnet ef migrations add AddThrivestackOutbox', then 'dotnet ef database update' (or Database.Migrate() at start); an app that "
        + "creates its schema with EnsureCreated() calls Database.EnsureThrivestackOutboxCreated() once at start.";

    /// <summary>The first save of an app whose outbox was never created: say how to create it, not only what the database said.</summary>
    public static InvalidOperationException Exception(OutboxTable table, DbException exception) =>
        new($"{Describe(table)} The identify events of this save (or enqueue) could not be written, so it failed.", exception);
}
