using System.Data.Common;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Migrations.Operations;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Microsoft.EntityFrameworkCore;

/// <summary>Creates the identify outbox table in databases that are not managed by migrations.</summary>
public static class ThrivestackDatabaseFacadeExtensions
{
    /// <summary>
    /// Creates the outbox table mapped by <c>modelBuilder.AddThrivestackOutbox()</c>, with its indexes, and the
    /// <c>thrivestack_backfill</c> table beside it (backfill checkpoints; on SQLite also the dispatcher's outbox lease),
    /// each when it does not exist yet. For applications that create their schema with <c>Database.EnsureCreated()</c>, which does
    /// nothing on a database that already has tables. Applications that use migrations get the table from
    /// <c>dotnet ef migrations add</c> instead. Safe to call at every start. Does nothing on a provider without SQL (EF's
    /// InMemory provider, as in tests), where no events are captured.
    /// </summary>
    /// <param name="database">The context's database facade, <c>context.Database</c>.</param>
    /// <returns><see langword="true"/> when a table was created; <see langword="false"/> when both already existed or the provider does not run SQL.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="database"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">
    /// The model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing) or is a compiled model.
    /// </exception>
    public static bool EnsureThrivestackOutboxCreated(this DatabaseFacade database)
    {
        if (Resolve(database) is not ({ } context, { } tables))
        {
            return false;
        }

        var missing = tables.Where(t => !OutboxTableProbe.Exists(context, t.Name, t.Schema)).ToList();
        if (missing.Count == 0)
        {
            return false;
        }

        try
        {
            context.GetService<IMigrationCommandExecutor>().ExecuteNonQuery(Commands(context, missing), context.GetService<IRelationalConnection>());
            return true;
        }
        catch (DbException) when (missing.All(t => OutboxTableProbe.Exists(context, t.Name, t.Schema)))
        {
            // Another instance created them between the check and the CREATE.
            return false;
        }
    }

    /// <summary>
    /// Creates the outbox table and its indexes when it does not exist yet; see <see cref="EnsureThrivestackOutboxCreated"/>.
    /// </summary>
    /// <param name="database">The context's database facade, <c>context.Database</c>.</param>
    /// <param name="cancellationToken">Cancels the check and the creation.</param>
    /// <returns><see langword="true"/> when a table was created; <see langword="false"/> when both already existed or the provider does not run SQL.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="database"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">
    /// The model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing) or is a compiled model.
    /// </exception>
    public static async Task<bool> EnsureThrivestackOutboxCreatedAsync(this DatabaseFacade database, CancellationToken cancellationToken = default)
    {
        if (Resolve(database) is not ({ } context, { } tables))
        {
            return false;
        }

        var missing = new List<(string Name, string? Schema)>();
        foreach (var table in tables)
        {
            if (!await OutboxTableProbe.ExistsAsync(context, table.Name, table.Schema, cancellationToken).ConfigureAwait(false))
            {
                missing.Add(table);
            }
        }

        if (missing.Count == 0)
        {
            return false;
        }

        try
        {
            await context.GetService<IMigrationCommandExecutor>()
                .ExecuteNonQueryAsync(Commands(context, missing), context.GetService<IRelationalConnection>(), cancellationToken)
                .ConfigureAwait(false);
            return true;
        }
        catch (DbException) when (missing.All(t => OutboxTableProbe.Exists(context, t.Name, t.Schema)))
        {
            return false;
        }
    }

    // The outbox and the coordination table beside it (backfill checkpoints, SQLite's outbox lease); null on a provider
    // without SQL (EF's InMemory, as in tests), which has no tables and on which nothing is captured, as EnsureCreated does nothing there.
    private static (DbContext Context, List<(string Name, string? Schema)> Tables)? Resolve(DatabaseFacade database)
    {
        ArgumentNullException.ThrowIfNull(database);
        if (!database.IsRelational())
        {
            return null;
        }

        var context = ((IDatabaseFacadeDependenciesAccessor)database).Context;
        var outbox = ModelMap.For(context.Model).RequireOutbox();
        var tables = new List<(string Name, string? Schema)> { (outbox.TableName, outbox.Schema) };
        if (BackfillCheckpointConfiguration.TableIn(context.Model) is { } coordination)
        {
            tables.Add(coordination);
        }

        return (context, tables);
    }

    /// <summary>The statements <c>EnsureCreated</c> would run for these tables alone: the same differ and SQL generator.</summary>
    private static IReadOnlyList<MigrationCommand> Commands(DbContext context, List<(string Name, string? Schema)> tables)
    {
        var model = context.GetService<IDesignTimeModel>().Model;
        var operations = context.GetService<IMigrationsModelDiffer>()
            .GetDifferences(null, model.GetRelationalModel())
            .Where(o => o switch
            {
                EnsureSchemaOperation schema => tables.Any(t => t.Schema == schema.Name),
                CreateTableOperation create => tables.Contains((create.Name, create.Schema)),
                CreateIndexOperation index => tables.Contains((index.Table, index.Schema)),
                _ => false,
            })
            .ToList();
        return context.GetService<IMigrationsSqlGenerator>().Generate(operations, model, MigrationsSqlGenerationOptions.Default);
    }
}
