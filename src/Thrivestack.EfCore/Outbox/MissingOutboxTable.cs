using System.Data.Common;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore.Metadata;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// An app whose outbox table (or the coordination table beside it) was never created: what the database says, and what
/// to tell the user instead.
/// </summary>
internal static partial class MissingOutboxTable
{
    private const string Create =
        "then 'dotnet ef database update' (or Database.Migrate() at start); an app that creates its schema with EnsureCreated() "
        + "calls Database.EnsureThrivestackOutboxCreated() once at start.";

    /// <summary>
    /// Whether the database says the outbox table does not exist (PostgreSQL 42P01, MySQL 42S02, SQLite's "no such table",
    /// SQL Server's "Invalid object name"), naming the table.
    /// </summary>
    public static bool Is(OutboxTable table, DbException exception) => Is(table.TableName, exception);

    /// <summary>"The identify outbox table '...' does not exist in this database", and how to create it.</summary>
    public static string Describe(OutboxTable table) =>
        $"The identify outbox table '{Qualified(table.TableName, table.Schema)}' does not exist in this database. Create it: "
        + "'dotnet ef migrations add AddThrivestackOutbox', " + Create;

    /// <summary>The first save of an app whose outbox was never created: say how to create it, not only what the database said.</summary>
    public static InvalidOperationException Exception(OutboxTable table, DbException exception) =>
        new($"{Describe(table)} The identify events of this save (or enqueue) could not be written, so it failed.", exception);

    /// <summary>
    /// When <paramref name="exception"/> says a table of the library in <paramref name="model"/> does not exist (the outbox,
    /// or the coordination table of backfill checkpoints and SQLite's outbox lease): an exception naming it and how to
    /// create it, then <paramref name="consequence"/>, with the database's own as its inner exception. Else null.
    /// </summary>
    public static InvalidOperationException? Explain(IModel model, DbException exception, string consequence)
    {
        if (ModelMap.For(model).Outbox is { } outbox && Is(outbox, exception))
        {
            return new($"{Describe(outbox)} {consequence}", exception);
        }

        if (BackfillCheckpointConfiguration.TableIn(model) is { } coordination && Is(coordination.Name, exception))
        {
            return new(
                $"The table '{Qualified(coordination.Name, coordination.Schema)}' beside the identify outbox (backfill checkpoints; on SQLite also the "
                + "dispatcher's outbox lease) does not exist in this database. Create it: 'dotnet ef migrations add AddThrivestackBackfill', "
                + $"{Create} {consequence}",
                exception);
        }

        return null;
    }

    /// <summary>
    /// Whether the database says that exactly <paramref name="table"/> does not exist: the name its message gives (SQLite's
    /// "no such table: t", PostgreSQL's 42P01 'relation "s.t"', SQL Server's "Invalid object name 's.t'", MySQL's 42S02
    /// "Table 'db.t'"), without schema or quotes, equal to it. Not a substring: an outbox named <c>events</c> must not take
    /// the blame for the app's own missing <c>user_events</c>.
    /// </summary>
    internal static bool Is(string table, DbException exception)
    {
        foreach (Match match in MissingTableName().Matches(exception.Message))
        {
            var name = match.Groups["name"].Value;
            var last = name[(name.LastIndexOf('.') + 1)..].Trim('"', '\'', '`', '[', ']');
            if (string.Equals(last, table, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    [GeneratedRegex("""no such table: (?<name>[^\s'"]+)|relation "(?<name>[^"]+)" does not exist|Invalid object name '(?<name>[^']+)'|Table '(?<name>[^']+)' doesn't exist""", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex MissingTableName();

    private static string Qualified(string table, string? schema) => schema is null ? table : $"{schema}.{table}";
}
