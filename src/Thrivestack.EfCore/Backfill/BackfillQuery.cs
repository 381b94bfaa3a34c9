using System.Data.Common;
using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;

namespace Thrivestack.EfCore.Backfill;

/// <summary>Keyset reads of <typeparamref name="TEntity"/>: the raw SQL filters past the last key, LINQ orders and limits.</summary>
internal sealed class BackfillQuery<TEntity>(IEntityType entityType) : IBackfillQuery
    where TEntity : class
{
    public Task<long> CountAsync(DbContext context, CancellationToken cancellationToken) =>
        Set(context).LongCountAsync(cancellationToken);

    public async Task<List<object>> ReadAsync(DbContext context, string sql, DbParameter[] parameters, int take, CancellationToken cancellationToken)
    {
        var query = Set(context).FromSqlRaw(sql, parameters);
        var first = true;
        foreach (var property in entityType.FindPrimaryKey()!.Properties)
        {
            var entity = Expression.Parameter(typeof(TEntity), "e");
            var key = Expression.Lambda(
                Expression.Call(typeof(EF), nameof(EF.Property), [property.ClrType], entity, Expression.Constant(property.Name)),
                entity);
            query = query.Provider.CreateQuery<TEntity>(Expression.Call(
                typeof(Queryable),
                first ? nameof(Queryable.OrderBy) : nameof(Queryable.ThenBy),
                [typeof(TEntity), property.ClrType],
                query.Expression,
                Expression.Quote(key)));
            first = false;
        }

        // Tracked on purpose: shadow and owned traits are read through entries, as the interceptor reads them.
        var rows = await query.Take(take).AsTracking().ToListAsync(cancellationToken).ConfigureAwait(false);
        return rows.ConvertAll(static r => (object)r);
    }

    private DbSet<TEntity> Set(DbContext context) =>
        entityType.HasSharedClrType ? context.Set<TEntity>(entityType.Name) : context.Set<TEntity>();
}
