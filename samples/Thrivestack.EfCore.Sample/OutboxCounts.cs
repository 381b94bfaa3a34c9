using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Sample.Model;

namespace Thrivestack.EfCore.Sample;

/// <summary>How many rows of the outbox are in each state, read through the library's public API.</summary>
internal sealed record OutboxCounts(int Pending, int Delivered, int DeadLettered)
{
    public int Total => Pending + Delivered + DeadLettered;

    public static async Task<OutboxCounts> ReadAsync(AppDbContext db, CancellationToken cancellationToken = default)
    {
        var state = await db.GetThrivestackOutboxStateAsync(cancellationToken);
        return new OutboxCounts(checked((int)state.Pending), checked((int)state.Delivered), checked((int)state.DeadLettered));
    }
}
