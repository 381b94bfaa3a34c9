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
    }

    public IEntityType EntityType { get; }

    public string TableName { get; }

    public string? Schema { get; }

    public StoreObjectIdentifier StoreObject { get; }

    public IReadOnlyList<OutboxColumn> InsertColumns { get; }
}
