using System.Data.Common;
using System.Transactions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>
/// How a save ends, and what each ending leaves behind in the context and the outbox: cancelled, failed,
/// refused, rolled back. Each test looks at the context right after the save, never through the next save's
/// clean-up.
/// </summary>
public sealed class SaveLifecycleTests : IAsyncLifetime
{
    private readonly SqliteTestDatabase database = new();
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 11, 30, 8, 0, 0, TimeSpan.Zero));

    public async Task InitializeAsync() => await database.CreateSchemaAsync();

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task SaveChangesAsync_CancelledWhileItsCommandRuns_LeavesNoOutboxRowTracked()
    {
        var cancelOnInsert = new CancelOnFirstCommand();
        await using (var context = NewContext(cancelOnInsert))
        {
            var user = NewUser("cancelled@example.com");
            context.Users.Add(user);
            using var cancellation = new CancellationTokenSource();
            cancelOnInsert.Source = cancellation;

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => context.SaveChangesAsync(cancellation.Token));

            // Not a save: what the application sees when it inspects the context after the cancellation.
            Assert.True(cancelOnInsert.Cancelled);
            Assert.DoesNotContain(context.ChangeTracker.Entries(), e => e.Entity is OutboxMessage);
            Assert.Equal(EntityState.Added, context.Entry(user).State);
            Assert.True(context.ChangeTracker.AutoDetectChangesEnabled);
        }

        Assert.Empty(await OutboxReader.RowsAsync(database));
    }

    [Fact]
    public async Task SaveChangesAsync_CancelledWithStoreGeneratedKey_LeavesNothingOfOursAndNextSaveWritesOneRow()
    {
        var cancelOnInsert = new CancelOnFirstCommand();
        await using (var context = NewContext(cancelOnInsert))
        {
            var numbered = new NumberedUser { Email = "n@example.com", Name = "Nia" };
            context.NumberedUsers.Add(numbered);
            using var cancellation = new CancellationTokenSource();
            cancelOnInsert.Source = cancellation;

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => context.SaveChangesAsync(cancellation.Token));

            Assert.DoesNotContain(context.ChangeTracker.Entries(), e => e.Entity is OutboxMessage);
            Assert.Equal(AutoTransactionBehavior.WhenNeeded, context.Database.AutoTransactionBehavior);
            Assert.Empty(await OutboxReader.RowsAsync(database));

            cancelOnInsert.Source = null;
            await context.SaveChangesAsync();
        }

        Assert.Single(await OutboxReader.RowsAsync(database));
    }

    [Fact]
    public async Task SaveChanges_SyncSaveCancelledInItsCommand_LeavesNoOutboxRowTracked()
    {
        await using (var context = NewContext(new CancelFirstSyncCommand()))
        {
            context.Users.Add(NewUser("sync-cancelled@example.com"));

            Assert.ThrowsAny<OperationCanceledException>(() => context.SaveChanges());

            Assert.DoesNotContain(context.ChangeTracker.Entries(), e => e.Entity is OutboxMessage);
            Assert.True(context.ChangeTracker.AutoDetectChangesEnabled);
        }

        Assert.Empty(await OutboxReader.RowsAsync(database));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_UniqueIndexViolation_LeavesNoOutboxRowTracked(bool async)
    {
        await SeedUserAsync("taken@example.com");
        await using var context = NewContext();
        context.Users.Add(NewUser("taken@example.com"));

        if (async)
        {
            await Assert.ThrowsAsync<DbUpdateException>(() => context.SaveChangesAsync());
        }
        else
        {
            Assert.Throws<DbUpdateException>(() => context.SaveChanges());
        }

        Assert.DoesNotContain(context.ChangeTracker.Entries(), e => e.Entity is OutboxMessage);
        Assert.Single(await OutboxReader.RowsAsync(database));
    }

    [Fact]
    public async Task SaveChangesAsync_ConcurrencyConflict_LeavesNoOutboxRowTracked()
    {
        int id;
        await using (var seed = NewContext())
        {
            var numbered = new NumberedUser { Email = "n@example.com", Name = "Before" };
            seed.NumberedUsers.Add(numbered);
            await seed.SaveChangesAsync();
            id = numbered.Id;
        }

        await using var context = NewContext();
        var loaded = await context.NumberedUsers.SingleAsync(u => u.Id == id);
        await using (var other = NewContext())
        {
            await other.NumberedUsers.Where(u => u.Id == id).ExecuteUpdateAsync(s => s.SetProperty(u => u.Version, 7));
        }

        // A client-keyed user in the same save: its row is tracked by EF's batch. EF calls no interceptor for a
        // concurrency conflict (efcore#32750); only its SaveChangesFailed event reports it.
        context.Users.Add(NewUser("guid@example.com"));
        loaded.Name = "After";
        await Assert.ThrowsAsync<DbUpdateConcurrencyException>(() => context.SaveChangesAsync());

        Assert.DoesNotContain(context.ChangeTracker.Entries(), e => e.Entity is OutboxMessage);
        Assert.Single(await OutboxReader.RowsAsync(database));
    }

    [Fact]
    public async Task SaveChangesAsync_AppInterceptorThrowsAfterCapture_RetryWritesOneRowPerChange()
    {
        var failOnce = new FailFirstSavingChanges();
        await using (var context = NewContext(failOnce))
        {
            context.Users.Add(NewUser("retried@example.com"));

            // Thrown in SavingChanges, before EF's try block: EF reports no failure and no cancellation at all.
            await Assert.ThrowsAsync<InvalidOperationException>(() => context.SaveChangesAsync());
            await context.SaveChangesAsync();

            Assert.DoesNotContain(context.ChangeTracker.Entries(), e => e.Entity is OutboxMessage);
        }

        var rows = await OutboxReader.RowsAsync(database);
        Assert.Single(rows);
        Assert.Equal("retried@example.com", OutboxReader.Traits(rows[0]).GetProperty("email").GetString());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_StoreGeneratedKeyInAmbientTransactionScope_ThrowsNotSupportedNamingTheFix(bool async)
    {
        await using (var context = NewContext())
        {
            using (new TransactionScope(TransactionScopeAsyncFlowOption.Enabled))
            {
                context.NumberedUsers.Add(new NumberedUser { Email = "scoped@example.com" });
                var error = async
                    ? await Assert.ThrowsAsync<NotSupportedException>(() => context.SaveChangesAsync())
                    : Assert.Throws<NotSupportedException>(() => context.SaveChanges());

                Assert.Contains("TransactionScope", error.Message);
                Assert.Contains("BeginTransaction", error.Message);
                Assert.Contains("Guid", error.Message);
                Assert.DoesNotContain(context.ChangeTracker.Entries(), e => e.Entity is OutboxMessage);
            }
        }

        Assert.Empty(await OutboxReader.RowsAsync(database));
        await using var check = NewContext();
        Assert.Empty(await check.NumberedUsers.ToListAsync());
    }

    [Fact]
    public async Task SaveChanges_RolledBackTransaction_NoNudgeWhenALaterTransactionOfTheContextCommits()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddThrivestackIdentify<TestDbContext>(o => o.ApiToken = "unused");
        services.AddDbContext<TestDbContext>(o => database.Configure(o.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(clock))));
        await using var provider = services.BuildServiceProvider();
        var signal = provider.GetRequiredService<OutboxSignal>();

        await using var scope = provider.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        await using (var rolledBack = await context.Database.BeginTransactionAsync())
        {
            context.Users.Add(NewUser("rolled-back@example.com"));
            await context.SaveChangesAsync();
            await rolledBack.RollbackAsync();
        }

        context.ChangeTracker.Clear();
        var before = signal.Version;
        await using (var committed = await context.Database.BeginTransactionAsync())
        {
            // Nothing of ThriveStack's in this transaction: its commit has nothing to announce.
            context.Audit.Add(new AuditEntry { Text = "unrelated" });
            await context.SaveChangesAsync();
            await committed.CommitAsync();
        }

        Assert.Equal(before, signal.Version);
        Assert.Empty(await OutboxReader.RowsAsync(database));
    }

    [Fact]
    public async Task SaveChanges_CommittedTransaction_NudgesAtCommitNotBefore()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddThrivestackIdentify<TestDbContext>(o => o.ApiToken = "unused");
        services.AddDbContext<TestDbContext>(o => database.Configure(o.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(clock))));
        await using var provider = services.BuildServiceProvider();
        var signal = provider.GetRequiredService<OutboxSignal>();

        await using var scope = provider.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        var before = signal.Version;
        await using (var transaction = await context.Database.BeginTransactionAsync())
        {
            context.Users.Add(NewUser("committed@example.com"));
            await context.SaveChangesAsync();
            Assert.Equal(before, signal.Version);
            await transaction.CommitAsync();
        }

        Assert.True(signal.Version > before);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_InUseTransactionCommittedOnTheDbTransactionItself_NudgesWhenTheContextIsDisposedOrPooled(bool pooled)
    {
        // EF never sees a DbTransaction given with UseTransaction end when the app commits it on itself: the context's end
        // (disposed, or returned to its pool) wakes the dispatcher instead of its next poll.
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddThrivestackIdentify<TestDbContext>(o => o.ApiToken = "unused");
        if (pooled)
        {
            services.AddDbContextPool<TestDbContext>(o => database.Configure(o.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(clock))));
        }
        else
        {
            services.AddDbContext<TestDbContext>(o => database.Configure(o.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(clock))));
        }

        await using var provider = services.BuildServiceProvider();
        var signal = provider.GetRequiredService<OutboxSignal>();
        long before;
        await using (var scope = provider.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<TestDbContext>();
            var connection = context.Database.GetDbConnection();
            await connection.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await context.Database.UseTransactionAsync(transaction);
            context.Users.Add(NewUser("use-transaction@example.com"));
            await context.SaveChangesAsync();
            before = signal.Version;
            await transaction.CommitAsync();
            Assert.Equal(before, signal.Version);
        }

        Assert.True(signal.Version > before, "the context ended without waking the dispatcher");
        Assert.Single(await OutboxReader.RowsAsync(database));
    }

    private TestDbContext NewContext(params IInterceptor[] interceptors)
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        database.Configure(builder);
        builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(clock));
        if (interceptors.Length > 0)
        {
            builder.AddInterceptors(interceptors);
        }

        return new TestDbContext(builder.Options);
    }

    private static AppUser NewUser(string email) => new() { Id = Guid.NewGuid(), Email = email, FirstName = "Ada" };

    private async Task SeedUserAsync(string email)
    {
        await using var context = NewContext();
        context.Users.Add(NewUser(email));
        await context.SaveChangesAsync();
    }

    /// <summary>Cancels the save's token as its first command starts, as a caller's timeout would mid-save.</summary>
    private sealed class CancelOnFirstCommand : DbCommandInterceptor
    {
        public CancellationTokenSource? Source { get; set; }

        public bool Cancelled { get; private set; }

        public override async ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            if (Source is { IsCancellationRequested: false } source)
            {
                await source.CancelAsync();
                Cancelled = true;
            }

            return result;
        }

        public override async ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            if (Source is { IsCancellationRequested: false } source)
            {
                await source.CancelAsync();
                Cancelled = true;
            }

            return result;
        }
    }

    /// <summary>A synchronous command cancelled as it starts (as <c>DbCommand.Cancel</c> from another thread would).</summary>
    private sealed class CancelFirstSyncCommand : DbCommandInterceptor
    {
        private bool cancelled;

        public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result) =>
            Cancel(result);

        public override InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result) =>
            Cancel(result);

        private T Cancel<T>(T result)
        {
            if (!cancelled)
            {
                cancelled = true;
                throw new OperationCanceledException("The command was cancelled.");
            }

            return result;
        }
    }

    /// <summary>An application interceptor, after this library's, that refuses the first save.</summary>
    private sealed class FailFirstSavingChanges : SaveChangesInterceptor
    {
        private bool failed;

        public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            if (!failed)
            {
                failed = true;
                throw new InvalidOperationException("The application refuses this save.");
            }

            return ValueTask.FromResult(result);
        }
    }
}
