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
    /// Creates the outbox table mapped by <c>modelBuilder.AddThrivestackOutbox()</c>, with its indexes, when it does
    /// not exist yet. For applications that create their schema with <c>Database.EnsureCreated()</c>, which does
    /// nothing on a database that already has tables. Applications that use migrations get the table from
    /// <c>dotnet ef migrations add</c> instead. Safe to call at every start.
    /// </summary>
    /// <param name="database">The context's database facade, <c>context.Database</c>.</param>
    /// <returns><see langword="true"/> when the table was created; <see langword="false"/> when it already existed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="database"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">
    /// The model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing) or is a compiled model, or the provider does not run SQL.
    /// </exception>
    public static bool EnsureThrivestackOutboxCreated(this DatabaseFacade database)
    {
        var (context, table) = Resolve(database);
        if (OutboxTableProbe.Exists(context, table))
        {
            return false;
        }

        try
        {
            context.GetService<IMigrationCommandExecutor>().ExecuteNonQuery(Commands(context, table), context.GetService<IRelationalConnection>());
            return true;
        }
        catch (DbException) when (OutboxTableProbe.Exists(context, table))
        {
            // Another instance created it between the check and the CREATE.
            return false;
        }
    }

    /// <summary>
    /// Creates the outbox table and its indexes when it does not exist yet; see <see cref="EnsureThrivestackOutboxCreated"/>.
    /// </summary>
    /// <param name="database">The context's database facade, <c>context.Database</c>.</param>
    /// <param name="cancellationToken">Cancels the check and the creation.</param>
    /// <returns><see langword="true"/> when the table was created; <see langword="false"/> when it already existed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="database"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">
    /// The model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing) or is a compiled model, or the provider does not run SQL.
    /// </exception>
    public static async Task<bool> EnsureThrivestackOutboxCreatedAsync(this DatabaseFacade database, CancellationToken cancellationToken = default)
    {
        var (context, table) = Resolve(database);
        if (await OutboxTableProbe.ExistsAsync(context, table, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }

        try
        {
            await context.GetService<IMigrationCommandExecutor>()
                .ExecuteNonQueryAsync(Commands(context, table), context.GetService<IRelationalConnection>(), cancellationToken)
                .ConfigureAwait(false);
            return true;
        }
        catch (DbException) when (OutboxTableProbe.Exists(context, table))
        {
            return false;
        }
    }

    private static (DbContext Context, OutboxTable Table) Resolve(DatabaseFacade database)
    {
        ArgumentNullException.ThrowIfNull(database);
        if (!database.IsRelational())
        {
            throw new InvalidOperationException(
                $"EnsureThrivestackOutboxCreated needs a SQL database provider; '{database.ProviderName}' has no tables, and the identify interceptor captures nothing on it.");
        }

        var context = ((IDatabaseFacadeDependenciesAccessor)database).Context;
        return (context, ModelMap.For(context.Model).RequireOutbox());
    }

    /// <summary>The statements <c>EnsureCreated</c> would run for the outbox alone: the same differ and SQL generator.</summary>
    private static IReadOnlyList<MigrationCommand> Commands(DbContext context, OutboxTable table)
    {
        var model = context.GetService<IDesignTimeModel>().Model;
        var operations = context.GetService<IMigrationsModelDiffer>()
            .GetDifferences(null, model.GetRelationalModel())
            .Where(o => o switch
            {
                EnsureSchemaOperation schema => schema.Name == table.Schema,
                CreateTableOperation create => create.Name == table.TableName && create.Schema == table.Schema,
                CreateIndexOperation index => index.Table == table.TableName && index.Schema == table.Schema,
                _ => false,
            })
            .ToList();
        return context.GetService<IMigrationsSqlGenerator>().Generate(operations, model, MigrationsSqlGenerationOptions.Default);
    }
}
