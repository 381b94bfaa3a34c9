using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Microsoft.EntityFrameworkCore;

// The outbox's part of the model builder's entry points (the mapping's part: Mapping/ThrivestackModelBuilderExtensions.cs).
public static partial class ThrivestackModelBuilderExtensions
{
    /// <summary>The default name of the outbox table.</summary>
    public const string DefaultOutboxTableName = "thrivestack_outbox";

    /// <summary>
    /// Adds the identify outbox table to the model, so that <c>dotnet ef migrations add</c> creates it
    /// with the application's own tables. It also adds <c>thrivestack_backfill</c> (same schema), where
    /// <c>BackfillThrivestackAsync</c> keeps its checkpoints.
    /// </summary>
    /// <param name="modelBuilder">The application's model builder.</param>
    /// <param name="tableName">The table name. The default is <c>thrivestack_outbox</c>.</param>
    /// <param name="schema">The schema, or <see langword="null"/> for the default schema.</param>
    /// <returns>The same model builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="modelBuilder"/> or <paramref name="tableName"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="tableName"/> is empty or white space.</exception>
    public static ModelBuilder AddThrivestackOutbox(this ModelBuilder modelBuilder, string tableName = DefaultOutboxTableName, string? schema = null)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);
        ArgumentException.ThrowIfNullOrWhiteSpace(tableName);
        MappingConfiguration.Of(modelBuilder.Model); // present even without mappings: its absence marks a compiled model
        OutboxModelConfiguration.Configure(modelBuilder.Entity<OutboxMessage>(), tableName, schema);
        BackfillCheckpointConfiguration.Configure(modelBuilder.Entity<BackfillCheckpoint>(), schema); // backfill checkpoints (issue 12)
        return modelBuilder;
    }
}
