using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Backfill;

/// <summary>
/// On SQLite (one writer at a time) a backfill chunk lets the app's saves in progress go first: it begins its transaction
/// only once they ended (or after the signal's <see cref="OutboxSignal.SaveYield"/>, here long enough never to run out).
/// </summary>
public sealed class BackfillSaveYieldTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = HeldSave.Deadline;

    private readonly SqliteTestDatabase database = new();
    private List<string> seeded = [];

    public async Task InitializeAsync()
    {
        await database.CreateSchemaAsync();

        // Without the interceptor: users that exist before the library was adopted.
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        database.Configure(builder);
        await using var context = new TestDbContext(builder.Options);
        var users = Enumerable.Range(0, 5).Select(i => new NumberedUser { Email = $"n{i}@example.com" }).ToList();
        context.NumberedUsers.AddRange(users);
        await context.SaveChangesAsync();
        seeded = users.Select(u => u.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
    }

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task BackfillThrivestackAsync_AppSaveInProgressOnSqlite_ChunkWritesOnlyAfterItsCommit()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddThrivestackIdentify<TestDbContext>(o => o.SendingEnabled = false);
        await using var provider = services.BuildServiceProvider();
        var signal = provider.GetRequiredService<OutboxSignal>();
        signal.SaveYield = TimeSpan.FromMinutes(1);

        // The library's interceptor runs before the app's, so the save is counted while the app's holds it.
        var hold = new HeldSave();
        await using var app = NewContext(provider, hold);
        var appUser = new AppUser { Id = Guid.NewGuid(), Email = "app@example.com" };
        app.Users.Add(appUser);
        var appSave = app.SaveChangesAsync();
        await hold.Entered.Task.WaitAsync(Deadline);
        Assert.Equal(1, signal.SavesInProgress);

        await using var backfillContext = NewContext(provider);
        var backfill = backfillContext.BackfillThrivestackAsync();
        await HeldSave.WaitUntilAsync(() => signal.HasYieldWaiter || backfill.IsCompleted);

        Assert.True(signal.HasYieldWaiter, "The backfill's chunk did not wait for the app's save in progress.");
        Assert.Empty(await OutboxReader.RowsAsync(database));
        hold.Release.SetResult();
        await appSave.WaitAsync(Deadline);
        Assert.True((await backfill.WaitAsync(Deadline)).Completed);

        var rows = await OutboxReader.RowsAsync(database);
        var appRow = Assert.Single(rows, r => r.Kind != OutboxEventKind.Backfill);
        Assert.Equal(appUser.Id.ToString("D"), appRow.UserId);
        var backfilled = rows.Where(r => r.Kind == OutboxEventKind.Backfill).ToList();
        Assert.Subset(backfilled.Select(r => r.UserId).ToHashSet(), seeded.ToHashSet());
        Assert.All(backfilled, r => Assert.True(r.Id > appRow.Id, $"Backfill row {r.Id} was written before the app's row {appRow.Id}."));
    }

    [Fact]
    public async Task BackfillThrivestackAsync_OnContextWhoseRefusedSaveStillCounts_DoesNotWaitForIt()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddThrivestackIdentify<TestDbContext>(o => o.SendingEnabled = false);
        await using var provider = services.BuildServiceProvider();
        var signal = provider.GetRequiredService<OutboxSignal>();
        signal.SaveYield = TimeSpan.FromMinutes(10);

        // An app interceptor refuses the save in SavingChanges: EF reports no end, so the save still counts.
        await using var context = NewContext(provider, new RefuseEverySave());
        context.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "refused@example.com" });
        await Assert.ThrowsAsync<InvalidOperationException>(() => context.SaveChangesAsync());
        context.ChangeTracker.Clear();
        Assert.Equal(1, signal.SavesInProgress);

        var result = await context.BackfillThrivestackAsync().WaitAsync(Deadline);

        Assert.True(result.Completed);
        Assert.Equal(0, signal.SavesInProgress);
        Assert.Equal(seeded.Count, (await OutboxReader.RowsAsync(database)).Count);
    }

    private TestDbContext NewContext(IServiceProvider provider, params IInterceptor[] interceptors)
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>().UseApplicationServiceProvider(provider);
        database.Configure(builder);
        builder.AddThrivestackIdentifyInterceptor();
        if (interceptors.Length > 0)
        {
            builder.AddInterceptors(interceptors);
        }

        return new TestDbContext(builder.Options);
    }

    /// <summary>An application interceptor, after this library's, that refuses every save.</summary>
    private sealed class RefuseEverySave : SaveChangesInterceptor
    {
        public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("The application refuses this save.");
    }
}
