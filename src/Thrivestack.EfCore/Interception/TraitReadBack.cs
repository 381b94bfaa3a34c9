using System.Data.Common;
using System.Reflection;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Reads the traits of users this save changed back from their rows, inside the save's transaction and after EF's
/// commands, so an event carries what the database holds at commit, not the context's copy. EF updates only the columns
/// a context changed: two contexts that loaded the same user and each changed a different trait both save, and the
/// second one's copy of the other trait is stale. Built from its copy, its event (the newest, which wins) would tell
/// ThriveStack the stale value for good.
/// </summary>
/// <remarks>
/// The save's UPDATE locks the user's row until commit (SQLite has one writer at a time), so no other transaction changes
/// it between this read and the commit, and a concurrent save of the same user reads after this one commits: each event
/// equals the row as its transaction committed it, in commit order. Where this save did not update the user's row (a
/// membership carrying a tracked user's traits) the read takes no lock: a lock there (PostgreSQL's <c>FOR UPDATE</c>) met
/// foreign-key checks' share locks in deadlocks, needs the UPDATE privilege and fails under REPEATABLE READ, for a race
/// of the few microseconds between this read and the outbox INSERT. Traits that are not columns of the user's own
/// table (owned types in tables of their own or in JSON, TPT base tables, entity splitting) keep the context's values,
/// and so does a value the context holds that equals the row's under the trait's comparer (a local DateTime read back
/// as unspecified, a decimal read back with the column's scale). A value that cannot be read back is the context's too:
/// the read never fails a save that would otherwise succeed.
/// </remarks>
internal static class TraitReadBack
{
    /// <summary>A trait whose value was not read back: the event takes the context's value.</summary>
    public static readonly object NotRead = new();

    /// <summary>Users per statement: few parameters, well inside every provider's limit.</summary>
    private const int UsersPerStatement = 200;

    private static readonly MethodInfo ReadAsMethod = typeof(TraitReadBack).GetMethod(nameof(ReadAs), BindingFlags.NonPublic | BindingFlags.Static)!;

    /// <summary>
    /// Whether the capture's event should carry traits read back from the user's row: a user the context loaded, unless
    /// its save writes every trait (an <c>Update()</c> of a detached user marks all of them modified: the row then holds
    /// the context's values) or EF guards its UPDATE with a concurrency token the database changes on every write
    /// (PostgreSQL's <c>xmin</c>, SQL Server's <c>rowversion</c>): any other write since the context loaded the row changed
    /// the token, so a save from a stale copy fails with a concurrency conflict, and one that succeeds wrote over the row
    /// the context loaded.
    /// </summary>
    public static bool Applies(EntityEntry? user, UserMap? map)
    {
        if (user is null || user.State == EntityState.Added || map is null || PlanOf(map) is not { Readable: true } plan)
        {
            return false;
        }

        return user.State != EntityState.Modified || !(plan.GuardedByStoreToken || WritesEveryTrait(user, map));
    }

    private static bool WritesEveryTrait(EntityEntry user, UserMap map)
    {
        if (user.State != EntityState.Modified || map.DirectTraits.Count != map.Traits.Count)
        {
            return false;
        }

        foreach (var trait in map.Traits)
        {
            if (!user.Property(trait.Property).IsModified)
            {
                return false;
            }
        }

        return true;
    }

    public static Dictionary<EntityEntry, object?[]> Read(DbContext context, DbTransaction transaction, IEnumerable<Capture> captures)
    {
        var values = new Dictionary<EntityEntry, object?[]>(ReferenceEqualityComparer.Instance);
        foreach (var (plan, users) in Batches(captures))
        {
            var byKey = plan.ByKey(users);
            using var command = plan.Command(context, transaction, users);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                plan.Take(reader, byKey, values);
            }
        }

        return values;
    }

    public static async Task<Dictionary<EntityEntry, object?[]>> ReadAsync(DbContext context, DbTransaction transaction, IEnumerable<Capture> captures, CancellationToken cancellationToken)
    {
        var values = new Dictionary<EntityEntry, object?[]>(ReferenceEqualityComparer.Instance);
        foreach (var (plan, users) in Batches(captures))
        {
            var byKey = plan.ByKey(users);
            var command = plan.Command(context, transaction, users);
            await using (command.ConfigureAwait(false))
            {
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        plan.Take(reader, byKey, values);
                    }
                }
            }
        }

        return values;
    }

    /// <summary>The users to read, by user type, a statement's worth at a time.</summary>
    private static List<(Plan Plan, List<EntityEntry> Users)> Batches(IEnumerable<Capture> captures)
    {
        var byType = new List<(UserMap Map, List<EntityEntry> Users)>(1);
        var seen = new HashSet<EntityEntry>(ReferenceEqualityComparer.Instance);
        foreach (var capture in captures)
        {
            if (!capture.ReadBack || !seen.Add(capture.User!))
            {
                continue;
            }

            var index = byType.FindIndex(t => ReferenceEquals(t.Map, capture.UserMap));
            if (index < 0)
            {
                byType.Add((capture.UserMap!, []));
                index = byType.Count - 1;
            }

            byType[index].Users.Add(capture.User!);
        }

        var batches = new List<(Plan, List<EntityEntry>)>(byType.Count);
        foreach (var (map, users) in byType)
        {
            var plan = PlanOf(map);
            for (var start = 0; start < users.Count; start += UsersPerStatement)
            {
                batches.Add((plan, start == 0 && users.Count <= UsersPerStatement ? users : users.GetRange(start, Math.Min(UsersPerStatement, users.Count - start))));
            }
        }

        return batches;
    }

    private static Plan PlanOf(UserMap map) => map.EntityType.GetOrAddRuntimeAnnotationValue(
        ThrivestackAnnotationNames.TraitReadBack,
        static m => new Plan(m!),
        map);

    private static object? ReadAs<T>(DbDataReader reader, int ordinal) => reader.GetFieldValue<T>(ordinal);

    /// <summary>How one user type's traits are read from its table: its key columns, then each trait that is a column of it.</summary>
    private sealed class Plan
    {
        private readonly UserMap map;
        private readonly IProperty[] keys = [];
        private readonly RelationalTypeMapping[] keyMappings = [];
        private readonly Func<DbDataReader, int, object?>[] keyReads = [];
        private readonly KeyComparer keyComparer = new([]);
        private readonly (int Trait, RelationalTypeMapping Mapping, Func<DbDataReader, int, object?> Read)[] columns = [];
        private readonly string[] keyColumns = [];
        private readonly string[] traitColumns = [];
        private readonly string table = "";
        private readonly string? schema;

        /// <summary>The statement's text by number of users (a save reads the same few counts over and over).</summary>
        private readonly System.Collections.Concurrent.ConcurrentDictionary<int, (string Text, string[] Names)> texts = new();

        public Plan(UserMap map)
        {
            this.map = map;
            var entityType = map.EntityType;
            if (entityType.GetTableName() is not { } table || entityType.FindPrimaryKey() is not { } key)
            {
                return;
            }

            var store = StoreObjectIdentifier.Table(table, entityType.GetSchema());
            var keyColumnList = new List<string>();
            var keyMappingList = new List<RelationalTypeMapping>();
            var keyReadList = new List<Func<DbDataReader, int, object?>>();
            foreach (var property in key.Properties)
            {
                if (property.GetColumnName(store) is not { } column || property.FindRelationalTypeMapping(store) is not { } mapping)
                {
                    return;
                }

                keyColumnList.Add(column);
                keyMappingList.Add(mapping);
                keyReadList.Add(ReaderOf(mapping));
            }

            var traitColumnList = new List<string>();
            var columnList = new List<(int, RelationalTypeMapping, Func<DbDataReader, int, object?>)>();
            for (var i = 0; i < map.Traits.Count; i++)
            {
                var property = map.Traits[i].Property;
                if (property.DeclaringType is IEntityType { } declaring && declaring.IsMappedToJson())
                {
                    continue;
                }

                if (property.GetColumnName(store) is not { } column || property.FindRelationalTypeMapping(store) is not { } mapping)
                {
                    continue;
                }

                traitColumnList.Add(column);
                columnList.Add((i, mapping, ReaderOf(mapping)));
            }

            if (columnList.Count == 0)
            {
                return;
            }

            keys = [.. key.Properties];
            keyMappings = [.. keyMappingList];
            keyReads = [.. keyReadList];
            keyComparer = new KeyComparer([.. key.Properties.Select(p => p.GetKeyValueComparer())]);
            GuardedByStoreToken = entityType.GetProperties().Any(p => p.IsConcurrencyToken && p.ValueGenerated == ValueGenerated.OnAddOrUpdate && ChangesOnEveryWrite(p, store));
            columns = [.. columnList];
            keyColumns = [.. keyColumnList];
            traitColumns = [.. traitColumnList];
            this.table = table;
            schema = entityType.GetSchema();
        }

        /// <summary>Whether any trait of this user type is a column of its table.</summary>
        public bool Readable => columns.Length > 0;

        /// <summary>A concurrency token of the user's table that the database changes on every write (EF checks it in the UPDATE).</summary>
        public bool GuardedByStoreToken { get; }

        public DbCommand Command(DbContext context, DbTransaction transaction, List<EntityEntry> users)
        {
            var (text, names) = texts.GetOrAdd(users.Count, static (count, state) => state.Plan.Text(state.Context, count), (Plan: this, Context: context));
            var command = transaction.Connection!.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = text;
            var parameter = 0;
            foreach (var user in users)
            {
                for (var k = 0; k < keys.Length; k++)
                {
                    command.Parameters.Add(keyMappings[k].CreateParameter(command, names[parameter++], user.Property(keys[k]).CurrentValue, nullable: false));
                }
            }

            return command;
        }

        /// <summary>The SELECT of <paramref name="count"/> users by key, and its parameters' names.</summary>
        private (string Text, string[] Names) Text(DbContext context, int count)
        {
            var sql = context.GetService<ISqlGenerationHelper>();
            var text = new StringBuilder("SELECT ");
            text.AppendJoin(", ", keyColumns.Concat(traitColumns).Select(c => sql.DelimitIdentifier(c)));
            text.Append(" FROM ").Append(sql.DelimitIdentifier(table, schema)).Append(" WHERE ");
            var names = new string[count * keys.Length];
            for (var u = 0; u < count; u++)
            {
                text.Append(u == 0 ? "(" : " OR (");
                for (var k = 0; k < keys.Length; k++)
                {
                    var parameter = (u * keys.Length) + k;
                    var name = $"rb{parameter}";
                    names[parameter] = sql.GenerateParameterName(name);
                    text.Append(k == 0 ? "" : " AND ").Append(sql.DelimitIdentifier(keyColumns[k])).Append(" = ").Append(sql.GenerateParameterNamePlaceholder(name));
                }

                text.Append(')');
            }

            return (text.ToString(), names);
        }

        /// <summary>The batch's users by key, to match the rows read to them.</summary>
        public Dictionary<object?[], EntityEntry> ByKey(List<EntityEntry> users)
        {
            var byKey = new Dictionary<object?[], EntityEntry>(users.Count, keyComparer);
            foreach (var user in users)
            {
                var key = new object?[keys.Length];
                var values = user.CurrentValues;
                for (var k = 0; k < keys.Length; k++)
                {
                    key[k] = values[keys[k]];
                }

                byKey.TryAdd(key, user);
            }

            return byKey;
        }

        /// <summary>Matches a row to its user by key and keeps the traits it holds.</summary>
        public void Take(DbDataReader reader, Dictionary<object?[], EntityEntry> users, Dictionary<EntityEntry, object?[]> values)
        {
            var rowKey = new object?[keys.Length];
            try
            {
                for (var k = 0; k < keys.Length; k++)
                {
                    rowKey[k] = reader.IsDBNull(k) ? null : FromProvider(keyMappings[k], keyReads[k](reader, k));
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // A key this reader cannot give back as its model type: the users of the row keep the context's values.
                return;
            }

            if (!users.TryGetValue(rowKey, out var user))
            {
                return;
            }

            var current = user.CurrentValues;
            var traits = new object?[map.Traits.Count];
            Array.Fill(traits, NotRead);
            for (var c = 0; c < columns.Length; c++)
            {
                var (index, mapping, read) = columns[c];
                try
                {
                    var saved = reader.IsDBNull(keys.Length + c) ? null : FromProvider(mapping, read(reader, keys.Length + c));
                    var trait = map.Traits[index];

                    // Equal under the trait's comparer: the context's value, which keeps what the row's type drops (a
                    // DateTime's Kind, a decimal's scale) and formats as it always did.
                    var held = trait.IsOwned ? TraitReader.CurrentValue(user, trait) : current[trait.Property];
                    traits[index] = trait.Comparer.Equals(held, saved) ? NotRead : saved;
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // A column this reader cannot give back as its model type (an unknown enum name, a malformed JSON
                    // collection): the context's value, as before, rather than a failed save.
                    traits[index] = NotRead;
                }
            }

            values[user] = traits;
        }

        /// <summary>
        /// A token the database itself changes on every write: PostgreSQL's <c>xmin</c> system column, SQL Server's
        /// <c>rowversion</c>. Not any store-generated token: on SQLite <c>IsRowVersion()</c> changes only if the app wrote a
        /// trigger for it, and without one a stale copy would save unnoticed.
        /// </summary>
        private static bool ChangesOnEveryWrite(IProperty property, StoreObjectIdentifier store) =>
            string.Equals(property.GetColumnName(store), "xmin", StringComparison.Ordinal)
            || string.Equals(property.GetColumnType(store), "rowversion", StringComparison.OrdinalIgnoreCase);

        /// <summary>Reads a column as the provider's type of the mapping (the type EF's own reads ask for).</summary>
        private static Func<DbDataReader, int, object?> ReaderOf(RelationalTypeMapping mapping)
        {
            var providerType = mapping.Converter?.ProviderClrType ?? mapping.ClrType;
            providerType = Nullable.GetUnderlyingType(providerType) ?? providerType;
            return ReadAsMethod.MakeGenericMethod(providerType).CreateDelegate<Func<DbDataReader, int, object?>>();
        }

        private static object? FromProvider(RelationalTypeMapping mapping, object? value) =>
            value is not null && mapping.Converter is { } converter ? converter.ConvertFromProvider(value) : value;
    }

    /// <summary>Compares keys (one value per key property) with the key properties' own comparers.</summary>
    private sealed class KeyComparer(ValueComparer[] comparers) : IEqualityComparer<object?[]>
    {
        public bool Equals(object?[]? x, object?[]? y)
        {
            for (var k = 0; k < comparers.Length; k++)
            {
                if (!comparers[k].Equals(x![k], y![k]))
                {
                    return false;
                }
            }

            return true;
        }

        public int GetHashCode(object?[] key)
        {
            var hash = default(HashCode);
            for (var k = 0; k < comparers.Length; k++)
            {
                hash.Add(key[k] is null ? 0 : comparers[k].GetHashCode(key[k]));
            }

            return hash.ToHashCode();
        }
    }
}
