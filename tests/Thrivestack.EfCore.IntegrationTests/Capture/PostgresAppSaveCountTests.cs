using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Capture;

/// <summary>
/// PostgreSQL has many writers at a time: its saves are not counted as in progress (a backfill's chunks on SQLite wait for
/// the counted ones, see the fast suite's AppSaveCountTests), so they cost nothing more there.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresAppSaveCountTests(PostgresServer server) : IAsyncLifetime
{
    private TestDatabase database = null!;

    public async Task InitializeAsync()
    {
        database = await PostgresTestDatabase.CreateAsync(server);
        await database.CreateSchemaAsync();
    }

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task SaveChangesAsync_OnPostgres_IsNotCounted()
    {
        var probe = new CountAtInsert();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddThrivestackIdentify<TestDbContext>(o => o.ApiToken = "unused");
        services.AddDbContext<TestDbContext>(o => database.Configure(o.AddThrivestackIdentifyInterceptor().AddInterceptors(probe)));
        await using var provider = services.BuildServiceProvider();
        probe.Signal = provider.GetRequiredService<OutboxSignal>();
        await using var scope = provider.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        context.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "pg@example.com", FirstName = "Ada" });

        await context.SaveChangesAsync();

        Assert.Equal([0], probe.Seen);
        Assert.Single(await OutboxReader.RowsAsync(database));
    }

    /// <summary>Reads the saves in progress as the user's INSERT starts.</summary>
    private sealed class CountAtInsert : CommandWatcher
    {
        public OutboxSignal? Signal { get; set; }

        public List<int> Seen { get; } = [];

        protected override void Executing(DbCommand command)
        {
            if (command.CommandText.Contains("INSERT INTO \"Users\"", StringComparison.Ordinal))
            {
                Seen.Add(Signal!.SavesInProgress);
            }
        }
    }
}
