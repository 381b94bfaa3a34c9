using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>Reads the outbox with a fresh context, as the dispatcher would see it (a read, so it does not signal the database's activity).</summary>
internal static class OutboxReader
{
    /// <summary>
    /// Enqueues two events of ada and one of bob, due at <paramref name="now"/> minus a minute (rows are stamped with the
    /// system clock; claims in the claim tests run at a fixed time); returns their ids in outbox order.
    /// </summary>
    public static async Task<(long Ada1, long Ada2, long Bob)> EnqueueAdaAdaBobAsync(TestDatabase database, DateTime now)
    {
        await using (var context = database.CreateContext())
        {
            context.EnqueueThrivestackIdentify("ada", new Dictionary<string, object?> { ["email"] = "ada@example.com" });
            context.EnqueueThrivestackIdentify("ada", new Dictionary<string, object?> { ["email"] = "ada@example.org" });
            context.EnqueueThrivestackIdentify("bob", new Dictionary<string, object?> { ["email"] = "bob@example.com" });
            await context.SaveChangesAsync();
        }

        await using (var context = database.CreateContext())
        {
            await context.Set<OutboxMessage>().ExecuteUpdateAsync(s => s.SetProperty(r => r.NextAttemptAt, now - TimeSpan.FromMinutes(1)));
        }

        var rows = await RowsAsync(database);
        return (rows[0].Id, rows[1].Id, rows[2].Id);
    }

    public static async Task<List<OutboxMessage>> RowsAsync(TestDatabase database)
    {
        await using var context = database.CreateUnwatchedContext();
        return await context.Set<OutboxMessage>().AsNoTracking().OrderBy(m => m.Id).ToListAsync();
    }

    public static JsonElement Json(OutboxMessage message) => JsonDocument.Parse(message.Payload).RootElement;

    public static JsonElement Traits(OutboxMessage message) => Json(message).GetProperty("traits");
}
