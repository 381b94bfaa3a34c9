using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Capture;

/// <summary>
/// An edit's traits are read back from the user's row without a lock of their own: the save's UPDATE already holds the
/// row. A locking read (<c>FOR UPDATE</c>) conflicted with the share lock a foreign-key check takes on the user for any
/// transaction inserting a row that references it, so the edit waited for that transaction, and deadlocked when it then
/// updated the user.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresTraitReadBackTests(PostgresServer server) : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private TestDatabase database = null!;

    public async Task InitializeAsync()
    {
        database = await PostgresTestDatabase.CreateAsync(server);
        await database.CreateSchemaAsync();
    }

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task SaveChanges_UserEditedWhileAnotherTransactionInsertsARowReferencingIt_CommitsWithoutWaitingForIt()
    {
        int userId;
        long workspaceId;
        await using (var seed = database.CreateContext())
        {
            var user = new NumberedUser { Email = "n@example.com", Name = "Before" };
            var workspace = new Workspace { Name = "Engines" };
            seed.NumberedUsers.Add(user);
            seed.Workspaces.Add(workspace);
            await seed.SaveChangesAsync();
            (userId, workspaceId) = (user.Id, workspace.Id);
        }

        // Another request adds a membership of the user and has not committed yet: its foreign-key check holds a share
        // lock on the user's row.
        await using var other = database.CreateContext();
        await using var otherTransaction = await other.Database.BeginTransactionAsync();
        other.Members.Add(new WorkspaceMember { UserId = userId, WorkspaceId = workspaceId });
        await other.SaveChangesAsync();

        await using (var context = database.CreateContext())
        {
            (await context.NumberedUsers.SingleAsync(u => u.Id == userId)).Name = "After";
            await context.SaveChangesAsync().WaitAsync(Deadline);
        }

        await otherTransaction.RollbackAsync();
        var last = (await OutboxReader.RowsAsync(database)).OrderBy(r => r.Id).Last();
        Assert.Equal("After", OutboxReader.Traits(last).GetProperty(ThrivestackTraits.FullName).GetString());
    }
}
