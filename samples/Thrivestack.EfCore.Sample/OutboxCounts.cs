using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Sample.Model;

namespace Thrivestack.EfCore.Sample;

/// <summary>How many rows of the outbox table are in each state.</summary>
internal sealed record OutboxCounts(int Pending, int Delivered, int DeadLettered)
{
    // The outbox has no public DbSet; a plain query over its table is enough to watch it.
    // state: 0 = pending, 1 = delivered, 2 = dead-lettered.
    private const string Sql = """
        SELECT
            COALESCE(SUM(CASE WHEN state = 0 THEN 1 ELSE 0 END), 0) AS "Pending",
            COALESCE(SUM(CASE WHEN state = 1 THEN 1 ELSE 0 END), 0) AS "Delivered",
            COALESCE(SUM(CASE WHEN state = 2 THEN 1 ELSE 0 END), 0) AS "DeadLettered"
        FROM thrivestack_outbox
        """;

    public int Total => Pending + Delivered + DeadLettered;

    public static async Task<OutboxCounts> ReadAsync(AppDbContext db, CancellationToken cancellationToken = default)
    {
        var rows = await db.Database.SqlQueryRaw<OutboxCounts>(Sql).ToListAsync(cancellationToken);
        return rows[0];
    }
}
