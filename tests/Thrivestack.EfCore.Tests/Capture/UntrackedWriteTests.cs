using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>
/// The outbox rows are written by the library's own multi-row INSERTs, never tracked by EF: what that write path could
/// get wrong (large saves, a mix of key kinds, a failure of the INSERT itself). Run on SQLite here and on PostgreSQL in
/// the integration suite.
/// </summary>
public abstract class UntrackedWriteTests : IAsyncLifetime
{
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));

    protected TestDatabase Database { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Database = await CreateDatabaseAsync();
        await Database.CreateSchemaAsync();
    }

    public async Task DisposeAsync() => await Database.DisposeAsync();

    protected abstract Task<TestDatabase> CreateDatabaseAsync();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_TenThousandNewUsersInOneSave_WritesOneRowEachWithoutTrackingAny(bool async)
    {
        var users = Enumerable.Range(0, 10_000).Select(i => NewUser(i)).ToList();
        await using (var context = NewContext())
        {
            var tracked = TrackedOutboxRows(context);
            context.Users.AddRange(users);
            await Save(context, async);
            Assert.Equal(0, tracked());
            Assert.Empty(context.ChangeTracker.Entries<OutboxMessage>());
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(users.Select(u => u.Id.ToString("D")).Order(), rows.Select(r => r.UserId).Order());
        Assert.All(rows, r => Assert.Equal(clock.GetUtcNow().UtcDateTime, r.NextAttemptAt));
        Assert.All(rows, r => Assert.Equal(OutboxRowState.Pending, r.State));
        Assert.All(rows, r => Assert.Null(r.LeaseId));
        var last = users[^1];
        Assert.Equal(last.Email, OutboxReader.Traits(rows.Single(r => r.UserId == last.Id.ToString("D"))).GetProperty("email").GetString());
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task SaveChanges_StoreGeneratedAndClientKeysInOneSave_WritesOneRowPerChangeWithRealIds(bool explicitTransaction, bool async)
    {
        var guidUser = NewUser(1);
        var numbered = new NumberedUser { Email = "numbered@example.com", Name = "Nia" };
        var workspace = new Workspace { Name = "Acme" };
        await using (var context = NewContext())
        {
            var tracked = TrackedOutboxRows(context);
            var transaction = explicitTransaction ? await context.Database.BeginTransactionAsync() : null;
            context.Users.Add(guidUser);
            context.Members.Add(new WorkspaceMember { User = numbered, Workspace = workspace });
            context.TeamMembers.Add(new TeamMember { UserId = guidUser.Id, TeamId = "team-1", Role = "owner" });
            await Save(context, async);
            if (transaction is not null)
            {
                await transaction.CommitAsync();
                await transaction.DisposeAsync();
            }

            Assert.Equal(0, tracked());
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(2, rows.Count);
        var member = rows.Single(r => r.UserId == numbered.Id.ToString(CultureInfo.InvariantCulture));
        Assert.True(numbered.Id > 0);
        Assert.Equal(workspace.Id.ToString(CultureInfo.InvariantCulture), member.GroupId);
        var team = rows.Single(r => r.UserId == guidUser.Id.ToString("D"));
        Assert.Equal("team-1", team.GroupId);
        Assert.Equal(guidUser.Email, OutboxReader.Traits(team).GetProperty("email").GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_FailedSaveMixingKeys_WritesNothingAndCorrectedRetryWritesOneRowPerChange(bool async)
    {
        await using (var seed = NewContext())
        {
            seed.Users.Add(NewUser(0));
            await seed.SaveChangesAsync();
        }

        await using (var context = NewContext())
        {
            var clash = NewUser(2);
            clash.Email = NewUser(0).Email;
            var numbered = new NumberedUser { Email = "retry@example.com" };
            context.Users.AddRange(NewUser(1), clash);
            context.NumberedUsers.Add(numbered);
            await Assert.ThrowsAsync<DbUpdateException>(() => Save(context, async));
            Assert.Empty(context.ChangeTracker.Entries<OutboxMessage>());
            Assert.Single(await OutboxReader.RowsAsync(Database));

            clash.Email = "fixed@example.com";
            await Save(context, async);
            await Save(context, async);
            Assert.Empty(context.ChangeTracker.Entries<OutboxMessage>());
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(4, rows.Count);
        Assert.Equal(3, rows.Skip(1).Select(r => r.UserId).Distinct().Count());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_OutboxInsertFails_RollsBackTheUsersRowAndRetryWritesOne(bool async)
    {
        var user = NewUser(1);
        await using (var context = NewContext())
        {
            await context.Database.ExecuteSqlRawAsync("DROP TABLE thrivestack_outbox");
            context.Users.Add(user);
            await Assert.ThrowsAnyAsync<Exception>(() => Save(context, async));
            Assert.Empty(context.ChangeTracker.Entries<OutboxMessage>());
            Assert.Equal(EntityState.Added, context.Entry(user).State);

            await using (var check = NewContext())
            {
                Assert.Empty(await check.Users.ToListAsync());
            }

            await context.Database.EnsureThrivestackOutboxCreatedAsync();
            await Save(context, async);
        }

        Assert.Equal(user.Id.ToString("D"), Assert.Single(await OutboxReader.RowsAsync(Database)).UserId);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_TraitEditWhoseOutboxInsertFails_LeavesTheEditUncommittedAndRetryWritesOne(bool async)
    {
        // An edit's row is written at the commit (on PostgreSQL the INSERT carries the COMMIT in one command): when it fails,
        // the user's UPDATE must not be committed without it.
        var user = NewUser(1);
        await using (var seed = NewContext())
        {
            seed.Users.Add(user);
            await seed.SaveChangesAsync();
        }

        await using (var context = NewContext())
        {
            await context.Database.ExecuteSqlRawAsync("DROP TABLE thrivestack_outbox");
            var tracked = await context.Users.SingleAsync(u => u.Id == user.Id);
            tracked.Email = "edited@example.com";

            // The first save of an app whose outbox was never created: the error says how to create it.
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => Save(context, async));
            Assert.Contains("'thrivestack_outbox' does not exist", error.Message, StringComparison.Ordinal);
            Assert.Contains("dotnet ef migrations add AddThrivestackOutbox", error.Message, StringComparison.Ordinal);
            Assert.Contains("EnsureThrivestackOutboxCreated()", error.Message, StringComparison.Ordinal);
            Assert.IsAssignableFrom<System.Data.Common.DbException>(error.InnerException);
            Assert.Empty(context.ChangeTracker.Entries<OutboxMessage>());
            Assert.Equal(EntityState.Modified, context.Entry(tracked).State);

            await using (var check = NewContext())
            {
                Assert.Equal(user.Email, (await check.Users.AsNoTracking().SingleAsync(u => u.Id == user.Id)).Email);
            }

            await context.Database.EnsureThrivestackOutboxCreatedAsync();
            await Save(context, async);
        }

        var row = Assert.Single(await OutboxReader.RowsAsync(Database));
        Assert.Equal("edited@example.com", OutboxReader.Traits(row).GetProperty("email").GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_AutoTransactionsOffWithClientKeys_WritesRowsInTheSaveBatchAndDetachesThem(bool async)
    {
        await using (var context = NewContext())
        {
            context.Database.AutoTransactionBehavior = AutoTransactionBehavior.Never;
            context.Users.AddRange(NewUser(1), NewUser(2));
            await Save(context, async);
            Assert.Empty(context.ChangeTracker.Entries<OutboxMessage>());
            Assert.Equal(AutoTransactionBehavior.Never, context.Database.AutoTransactionBehavior);
        }

        Assert.Equal(2, (await OutboxReader.RowsAsync(Database)).Count);
    }

    protected TestDbContext NewContext() => Database.CreateContext(clock);

    protected static AppUser NewUser(int i) => new()
    {
        Id = Guid.NewGuid(),
        Email = string.Create(CultureInfo.InvariantCulture, $"user{i}@example.com"),
        FirstName = "Ada",
        Phones = ["+1234567890"],
        Age = 36,
        Address = new Address { City = "London" },
    };

    /// <summary>Counts every outbox row the context starts tracking from now on, however briefly.</summary>
    private static Func<int> TrackedOutboxRows(DbContext context)
    {
        var count = 0;
        context.ChangeTracker.Tracked += (_, e) => count += e.Entry.Entity is OutboxMessage ? 1 : 0;
        context.ChangeTracker.StateChanged += (_, e) => count += e.Entry.Entity is OutboxMessage && e.NewState == EntityState.Added ? 1 : 0;
        return () => count;
    }

    private static Task Save(DbContext context, bool async)
    {
        if (async)
        {
            return context.SaveChangesAsync();
        }

        context.SaveChanges();
        return Task.CompletedTask;
    }
}
