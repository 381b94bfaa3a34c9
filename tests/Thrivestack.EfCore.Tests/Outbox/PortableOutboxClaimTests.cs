using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Outbox;

/// <summary>
/// The claim suite on the portable claim (<see cref="PortableDialect"/>: the LINQ claim of the providers without a claim
/// statement of their own, SQL Server and MySQL among them), run on a SQLite file whose model is told to use it.
/// </summary>
public sealed class PortableOutboxClaimTests : OutboxClaimTests
{
    protected override Task<TestDatabase> CreateDatabaseAsync() => Task.FromResult<TestDatabase>(new PortableSqliteTestDatabase());

    [Fact]
    public async Task Database_ClaimsThroughThePortableDialect()
    {
        await using var context = new PortableSqliteTestDatabase().CreateContext();

        Assert.Same(PortableDialect.Instance, OutboxDialect.For(context));
        Assert.False(new OutboxStore(context).ClaimsByReading);
    }

    [Fact]
    public async Task Claim_OlderRowLeasedByAnotherClaimerBetweenReadAndUpdate_HoldsBackTheUsersNewerRows()
    {
        // The portable claim reads the ids, then leases them with a conditional update. A rival that leases ada's oldest
        // row in between must hold her newer row back: leased here, it would be sent beside (and maybe before) the older.
        var now = new DateTime(2026, 11, 28, 9, 30, 0, DateTimeKind.Utc);
        var lease = TimeSpan.FromSeconds(30);
        await using var database = new PortableSqliteTestDatabase();
        await database.CreateSchemaAsync();
        var (ada1, _, bob) = await OutboxReader.EnqueueAdaAdaBobAsync(database, now);
        var rival = new RivalBeforeUpdate(database, ada1, now + lease);
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        database.Configure(builder);
        await using var context = new TestDbContext(builder.AddThrivestackIdentifyInterceptor().AddInterceptors(rival).Options);

        var rows = await new OutboxStore(context).ClaimAsync(Guid.NewGuid(), "test", now, now + lease, 10, CancellationToken.None, TimeSpan.FromMinutes(5));

        Assert.True(rival.Struck);
        Assert.Equal([bob], rows.Select(r => r.Id));
    }

    /// <summary>Leases one row for another claimer right before the claim's first UPDATE runs.</summary>
    private sealed class RivalBeforeUpdate(TestDatabase database, long id, DateTime leaseEnd) : DbCommandInterceptor
    {
        public bool Struck { get; private set; }

        public override async ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            if (!Struck && command.CommandText.TrimStart().StartsWith("UPDATE", StringComparison.OrdinalIgnoreCase))
            {
                Struck = true;
                await using var rival = database.CreateContext();
                await rival.Set<OutboxMessage>().Where(r => r.Id == id).ExecuteUpdateAsync(
                    s => s.SetProperty(r => r.LeaseId, Guid.NewGuid()).SetProperty(r => r.LeaseOwner, "rival").SetProperty(r => r.LeaseExpiresAt, leaseEnd),
                    cancellationToken);
            }

            return result;
        }
    }
}
