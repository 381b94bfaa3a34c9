using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Capture;

/// <summary>Store-generated keys under Npgsql's retrying execution strategy (EnableRetryOnFailure).</summary>
[Collection(PostgresCollection.Name)]
public sealed class RetryingStrategyCaptureTests(PostgresServer server) : IAsyncLifetime
{
    private PostgresTestDatabase database = null!;

    public async Task InitializeAsync()
    {
        database = await PostgresTestDatabase.CreateAsync(server);
        await database.CreateSchemaAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task SaveChanges_IdentityUserUnderRetryingStrategy_WritesRealKeyAtomically()
    {
        var user = new NumberedUser { Email = "retry@example.com" };
        await using (var context = Retrying())
        {
            context.Members.Add(new WorkspaceMember { User = user, Workspace = new Workspace { Name = "Retry" } });
            await context.SaveChangesAsync();
        }

        var row = Assert.Single(await OutboxReader.RowsAsync(database));
        Assert.Equal(user.Id.ToString(CultureInfo.InvariantCulture), row.UserId);
    }

    [Fact]
    public async Task SaveChanges_IdentityUserInStrategyWrappedTransaction_WritesRealKeyOnCommit()
    {
        var user = new NumberedUser { Email = "wrapped@example.com" };
        await using (var context = Retrying())
        {
            var strategy = context.Database.CreateExecutionStrategy();
            await strategy.ExecuteAsync(async () =>
            {
                await using var transaction = await context.Database.BeginTransactionAsync();
                context.NumberedUsers.Add(user);
                await context.SaveChangesAsync();
                await transaction.CommitAsync();
            });
        }

        var row = Assert.Single(await OutboxReader.RowsAsync(database));
        Assert.Equal(user.Id.ToString(CultureInfo.InvariantCulture), row.UserId);
    }

    private TestDbContext Retrying() =>
        new(new DbContextOptionsBuilder<TestDbContext>()
            .UseNpgsql(database.ConnectionString, o => o.EnableRetryOnFailure())
            .AddThrivestackIdentifyInterceptor()
            .Options);
}
