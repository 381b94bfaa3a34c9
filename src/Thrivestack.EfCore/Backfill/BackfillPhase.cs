using System.Buffers;
using System.Data.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Backfill;

/// <summary>
/// One mapped user or membership entity type walked in primary key order. The keyset position is kept as
/// invariant text of the key's provider values, so it survives restarts and culture changes.
/// </summary>
internal sealed class BackfillPhase
{
    private readonly UserMap? user;
    private readonly MembershipMap? membership;
    private readonly IProperty[] key;
    private readonly IBackfillQuery query;
    private readonly string selectAll;
    private readonly string selectAfter;

    private BackfillPhase(IEntityType entityType, UserMap? user, MembershipMap? membership, ISqlGenerationHelper sql)
    {
        EntityType = entityType;
        this.user = user;
        this.membership = membership;
        var primaryKey = entityType.FindPrimaryKey()
            ?? throw new InvalidOperationException(
                $"The backfill walks '{entityType.DisplayName()}' in primary key order, but it has no primary key. Give it a key (HasKey) to backfill it.");
        key = [.. primaryKey.Properties];
        foreach (var property in key)
        {
            if (!IsSupported(ProviderType(property)))
            {
                throw new InvalidOperationException(
                    $"The backfill walks '{entityType.DisplayName()}' in primary key order, but its key property '{property.Name}' is of type {property.ClrType.Name}. Keys must be (or convert to) string, Guid or an integer type.");
            }
        }

        var table = entityType.GetTableName()
            ?? throw new InvalidOperationException(
                $"The backfill reads '{entityType.DisplayName()}' from its table, but it is not mapped to a table (for example, it is mapped to a view or a SQL query). "
                + "Map it with ToTable, or identify its rows with EnqueueThrivestackIdentify instead of the backfill.");
        var store = StoreObjectIdentifier.Table(table, entityType.GetSchema());
        var columns = key.Select(p => sql.DelimitIdentifier(p.GetColumnName(store)!)).ToArray();
        selectAll = "SELECT * FROM " + sql.DelimitIdentifier(table, entityType.GetSchema());
        selectAfter = selectAll + " WHERE " + KeysetFilter(columns, sql);
        query = (IBackfillQuery)Activator.CreateInstance(typeof(BackfillQuery<>).MakeGenericType(entityType.ClrType), entityType)!;
    }

    public IEntityType EntityType { get; }

    /// <summary>The checkpoint's entity name: the model's name of the type, stable across runs.</summary>
    public string Name => EntityType.Name;

    public bool IsUser => user is not null;

    public static BackfillPhase ForUser(UserMap map, ISqlGenerationHelper sql) => new(map.EntityType, map, null, sql);

    public static BackfillPhase ForMembership(MembershipMap map, ISqlGenerationHelper sql) => new(map.EntityType, null, map, sql);

    public Task<long> CountAsync(DbContext context, CancellationToken cancellationToken) => query.CountAsync(context, cancellationToken);

    /// <summary>Reads the next chunk after <paramref name="lastKey"/> (from the start when null), tracked.</summary>
    public Task<List<object>> ReadAsync(DbContext context, string? lastKey, int take, CancellationToken cancellationToken)
    {
        if (lastKey is null)
        {
            return query.ReadAsync(context, selectAll, [], take, cancellationToken);
        }

        var values = ParseKey(lastKey);
        var sql = context.GetService<ISqlGenerationHelper>();
        using var factory = context.Database.GetDbConnection().CreateCommand();
        var parameters = new DbParameter[key.Length];
        for (var i = 0; i < key.Length; i++)
        {
            parameters[i] = ((RelationalTypeMapping)key[i].GetRelationalTypeMapping())
                .CreateParameter(factory, sql.GenerateParameterName(ParameterName(i)), values[i], nullable: false);
        }

        return query.ReadAsync(context, selectAfter, parameters, take, cancellationToken);
    }

    /// <summary>The identify event of one read entity: a user's full traits, or a membership's group.</summary>
    public OutboxMessage? ToMessage(EntityEntry entry, DateTime timestampUtc)
    {
        if (user is null)
        {
            return new Capture(null, null, entry, membership).ToMessage(timestampUtc);
        }

        var message = new Capture(entry, user, null, null).ToMessage(timestampUtc);
        if (message is not null)
        {
            message.Kind = OutboxEventKind.Backfill;
        }

        return message;
    }

    /// <summary>The entry's primary key as a JSON array of invariant provider values.</summary>
    public string KeyOf(EntityEntry entry)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var property in key)
            {
                var value = entry.Property(property).CurrentValue;
                if (property.GetTypeMapping().Converter is { } converter)
                {
                    value = converter.ConvertToProvider(value);
                }

                writer.WriteStringValue(value is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : value?.ToString());
            }

            writer.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private object?[] ParseKey(string text)
    {
        using var document = JsonDocument.Parse(text);
        var items = document.RootElement.EnumerateArray().Select(e => e.GetString()).ToArray();
        if (items.Length != key.Length)
        {
            throw new InvalidOperationException(
                $"The backfill checkpoint of '{EntityType.DisplayName()}' holds a key of {items.Length} values, but the key has {key.Length} properties now. Run the backfill with Restart = true.");
        }

        var values = new object?[key.Length];
        for (var i = 0; i < key.Length; i++)
        {
            var type = ProviderType(key[i]);
            var value = type == typeof(string) ? items[i]
                : type == typeof(Guid) ? Guid.Parse(items[i]!, CultureInfo.InvariantCulture)
                : Convert.ChangeType(items[i], type, CultureInfo.InvariantCulture);
            values[i] = key[i].GetTypeMapping().Converter is { } converter ? converter.ConvertFromProvider(value) : value;
        }

        return values;
    }

    // c0 >= @k0 AND (c0 > @k0 OR (c0 = @k0 AND c1 > @k1) ...): the leading range lets the database seek the key index.
    private static string KeysetFilter(string[] columns, ISqlGenerationHelper sql)
    {
        var text = new StringBuilder();
        if (columns.Length > 1)
        {
            text.Append(columns[0]).Append(" >= ").Append(sql.GenerateParameterNamePlaceholder(ParameterName(0))).Append(" AND ");
        }

        text.Append('(');
        for (var i = 0; i < columns.Length; i++)
        {
            text.Append(i == 0 ? "(" : " OR (");
            for (var j = 0; j < i; j++)
            {
                text.Append(columns[j]).Append(" = ").Append(sql.GenerateParameterNamePlaceholder(ParameterName(j))).Append(" AND ");
            }

            text.Append(columns[i]).Append(" > ").Append(sql.GenerateParameterNamePlaceholder(ParameterName(i))).Append(')');
        }

        return text.Append(')').ToString();
    }

    private static string ParameterName(int index) => "backfill_key" + index.ToString(CultureInfo.InvariantCulture);

    private static Type ProviderType(IProperty property)
    {
        var type = property.GetTypeMapping().Converter?.ProviderClrType ?? property.ClrType;
        return Nullable.GetUnderlyingType(type) ?? type;
    }

    private static bool IsSupported(Type type) =>
        type == typeof(string) || type == typeof(Guid) || type == typeof(int) || type == typeof(long) || type == typeof(short)
        || type == typeof(byte) || type == typeof(uint) || type == typeof(ulong) || type == typeof(ushort) || type == typeof(decimal);
}
