using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>Reads the outbox with a fresh context, as the dispatcher would see it (a read, so it does not signal the database's activity).</summary>
internal static class OutboxReader
{
    public static async Task<List<OutboxMessage>> RowsAsync(TestDatabase database)
    {
        await using var context = database.CreateUnwatchedContext();
        return await context.Set<OutboxMessage>().AsNoTracking().OrderBy(m => m.Id).ToListAsync();
    }

    public static JsonElement Json(OutboxMessage message) => JsonDocument.Parse(message.Payload).RootElement;

    public static JsonElement Traits(OutboxMessage message) => Json(message).GetProperty("traits");
}
