using System.Data.Common;
using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Backfill;

/// <summary>The generic queries of one entity type, behind a non-generic face (the type is only known from the model).</summary>
internal interface IBackfillQuery
{
    Task<long> CountAsync(DbContext context, CancellationToken cancellationToken);

    /// <summary>Reads up to <paramref name="take"/> tracked entities of <paramref name="sql"/>, in primary key order.</summary>
    Task<List<object>> ReadAsync(DbContext context, string sql, DbParameter[] parameters, int take, CancellationToken cancellationToken);
}
