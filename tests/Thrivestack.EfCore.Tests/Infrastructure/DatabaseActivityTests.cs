using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>
/// The signal the outbox waits wake on: every way a context of the test database can change the outbox fires it,
/// and the waits' own reads do not (they would wake themselves in a loop).
/// </summary>
public sealed class DatabaseActivityTests : IAsyncLifetime
{
    private readonly SqliteTestDatabase database = new();

    public Task InitializeAsync() => database.CreateSchemaAsync();

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task Next_SaveThroughAContextOfTheDatabase_Completes()
    {
        var next = database.Activity.Next;
        Assert.False(next.IsCompleted);

        await using var context = database.CreateContext();
        context.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "ada@example.com" });
        await context.SaveChangesAsync();

        Assert.True(next.IsCompleted);
    }

    [Fact]
    public async Task Next_StatementThroughAdoNetOnTheContextsConnection_CompletesWhenTheConnectionCloses()
    {
        await using var context = database.CreateContext();
        await context.Database.OpenConnectionAsync();
        await using (var command = context.Database.GetDbConnection().CreateCommand())
        {
            command.CommandText = "UPDATE \"thrivestack_outbox\" SET \"attempts\" = 0";
            await command.ExecuteNonQueryAsync();
        }

        var next = database.Activity.Next;
        await context.Database.CloseConnectionAsync();

        Assert.True(next.IsCompleted);
    }

    [Fact]
    public async Task RowsAsync_ReadOfTheOutbox_DoesNotSignal()
    {
        var next = database.Activity.Next;

        await OutboxReader.RowsAsync(database);

        Assert.False(next.IsCompleted);
    }
}
