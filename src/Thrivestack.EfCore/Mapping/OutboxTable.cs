using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Thrivestack.EfCore.Mapping;

/// <summary>The outbox as mapped in one model: table, columns and their type mappings, for hand-written SQL.</summary>
internal sealed class OutboxTable
{
    public OutboxTable(IEntityType entityType)
    {
        EntityType = entityType;
        TableName = entityType.GetTableName()!;
        Schema = entityType.GetSchema();
        StoreObject = StoreObjectIdentifier.Table(TableName, Schema);
        InsertColumns = entityType.GetProperties()
            .Where(p => !p.IsPrimaryKey())
            .Select(p => new OutboxColumn(p, p.GetColumnName(StoreObject)!, (RelationalTypeMapping)p.GetRelationalTypeMapping()))
            .ToArray();
        MaxIdLength = MaxIdLengthOf(entityType);
    }

    /// <summary>The <see cref="MaxIdLength"/> of an outbox entity type (a provider without SQL sizes nothing: the constant).</summary>
    public static int MaxIdLengthOf(IEntityType outbox) =>
        new[] { nameof(Outbox.OutboxMessage.UserId), nameof(Outbox.OutboxMessage.GroupId) }
            .Select(outbox.FindProperty)
            .SelectMany(p => new[] { p?.GetMaxLength(), (p?.FindTypeMapping() as RelationalTypeMapping)?.Size })
            .Aggregate(ThrivestackModelBuilderExtensions.MaxIdLength, (max, size) => size is > 0 ? Math.Min(max, size.Value) : max);

    /// <summary>
    /// The longest user or group id the outbox stores: <see cref="ThrivestackModelBuilderExtensions.MaxIdLength"/>, or less
    /// where the provider sizes the id columns (SQL Server gives an indexed string <c>nvarchar(450)</c>, MySQL's providers
    /// <c>varchar(255)</c>): a longer id would fail the application's save, so its event is left out instead.
    /// </summary>
    public int MaxIdLength { get; }

    public IEntityType EntityType { get; }

    public string TableName { get; }

    public string? Schema { get; }

    public StoreObjectIdentifier StoreObject { get; }

    public IReadOnlyList<OutboxColumn> InsertColumns { get; }
}
