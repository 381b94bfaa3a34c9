using System.Data.Common;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Thrivestack.EfCore.Mapping;

/// <summary>A column of the outbox and the provider's type mapping, used to bind parameters exactly as EF would.</summary>
internal sealed record OutboxColumn(IProperty Property, string Name, RelationalTypeMapping TypeMapping)
{
    public DbParameter CreateParameter(DbCommand command, string name, object? value) =>
        TypeMapping.CreateParameter(command, name, value, Property.IsNullable);
}
