using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>
/// The capture guarantees, written once and run on every provider (SQLite here, PostgreSQL in the
/// integration suite): what produces an event, what it carries, and that it shares the change's transaction.
/// </summary>
public abstract class CaptureTests : IAsyncLifetime
{
    protected static readonly DateTimeOffset Now = new(2026, 11, 28, 9, 30, 15, 123, TimeSpan.Zero);

    protected FakeTimeProvider Clock { get; } = new(Now);

    protected TestDatabase Database { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Database = await CreateDatabaseAsync();
        await Database.CreateSchemaAsync();
    }

    public async Task DisposeAsync() => await Database.DisposeAsync();

    protected abstract Task<TestDatabase> CreateDatabaseAsync();

    protected TestDbContext NewContext() => Database.CreateContext(Clock);

    protected static AppUser NewUser(string email = "ada@example.com") => new()
    {
        Id = Guid.NewGuid(),
        Email = email,
        FirstName = "Ada",
        Phones = ["+1234567890", "+0987654321"],
        Age = 36,
        Verified = true,
        ActiveAt = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc),
        Address = new Address { City = "London", Street = "1 Analytical Way" },
    };

    [Fact]
    public async Task SaveChanges_NewUser_WritesOneEventWithTraitsInTheirJsonTypes()
    {
        var user = NewUser();
        await using (var context = NewContext())
        {
            context.Users.Add(user);
            context.Entry(user).Property("Plan").CurrentValue = "pro";
            await context.SaveChangesAsync();
        }

        var row = Assert.Single(await OutboxReader.RowsAsync(Database));
        var json = OutboxReader.Json(row);
        Assert.Equal(user.Id.ToString("D"), json.GetProperty("user_id").GetString());
        Assert.Equal("2026-11-28T09:30:15.123000Z", json.GetProperty("timestamp").GetString());
        var traits = json.GetProperty("traits");
        Assert.Equal("ada@example.com", traits.GetProperty("email").GetString());
        Assert.Equal("Ada", traits.GetProperty(ThrivestackTraits.FirstName).GetString());
        Assert.Equal(JsonValueKind.Array, traits.GetProperty(ThrivestackTraits.Phone).ValueKind);
        Assert.Equal(["+1234567890", "+0987654321"], traits.GetProperty(ThrivestackTraits.Phone).EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(36, traits.GetProperty("age").GetInt32());
        Assert.Equal(JsonValueKind.True, traits.GetProperty("verified").ValueKind);
        Assert.Equal("2026-01-02T03:04:05.0000000Z", traits.GetProperty(ThrivestackTraits.ActiveAt).GetString());
        Assert.Equal("London", traits.GetProperty(ThrivestackTraits.City).GetString());
        Assert.Equal("pro", traits.GetProperty("plan").GetString());
        Assert.False(traits.TryGetProperty(ThrivestackTraits.LastName, out _), "null traits are left out");
        Assert.False(json.TryGetProperty("context", out _));
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(row.Payload), row.PayloadBytes);
        Assert.Equal(user.Id.ToString("D"), row.UserId);
        Assert.Equal(OutboxRowState.Pending, row.State);
        Assert.Equal(Now.UtcDateTime, row.CreatedAt);
    }

    [Fact]
    public async Task SaveChanges_ChangedMappedTrait_WritesEventWithCurrentTraits()
    {
        var user = await SeedUserAsync();
        await using (var context = NewContext())
        {
            var loaded = await context.Users.SingleAsync(u => u.Id == user.Id);
            loaded.LastName = "Lovelace";
            await context.SaveChangesAsync();
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(2, rows.Count);
        var traits = OutboxReader.Traits(rows[1]);
        Assert.Equal("Lovelace", traits.GetProperty(ThrivestackTraits.LastName).GetString());
        Assert.Equal("ada@example.com", traits.GetProperty("email").GetString());
        Assert.Equal("London", traits.GetProperty(ThrivestackTraits.City).GetString());
    }

    [Fact]
    public async Task SaveChanges_OnlyUnmappedPropertyChanged_WritesNoEvent()
    {
        var user = await SeedUserAsync();
        await using (var context = NewContext())
        {
            var loaded = await context.Users.SingleAsync(u => u.Id == user.Id);
            loaded.LoginCount++;
            loaded.Address!.Street = "2 Difference Engine Road";
            Assert.Equal(1, await context.SaveChangesAsync());
        }

        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    [Fact]
    public async Task SaveChanges_TraitSetBackToOriginalValue_WritesNoEvent()
    {
        var user = await SeedUserAsync();
        await using (var context = NewContext())
        {
            var loaded = await context.Users.SingleAsync(u => u.Id == user.Id);
            loaded.FirstName = "Augusta";
            loaded.FirstName = "Ada";
            loaded.Phones = ["+1234567890", "+0987654321"];
            loaded.LoginCount = 5;
            await context.SaveChangesAsync();
        }

        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    [Fact]
    public async Task SaveChanges_UpdateOfDetachedEntity_WritesOneEventWithTraits()
    {
        var user = await SeedUserAsync();
        await using (var context = NewContext())
        {
            var detached = NewUser();
            detached.Id = user.Id;
            detached.FirstName = "Ada";
            context.Users.Update(detached);
            await context.SaveChangesAsync();
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(2, rows.Count);
        Assert.Equal("Ada", OutboxReader.Traits(rows[1]).GetProperty(ThrivestackTraits.FirstName).GetString());
    }

    [Fact]
    public async Task SaveChanges_OwnedTraitChanged_WritesEventForOwner()
    {
        var user = await SeedUserAsync();
        await using (var context = NewContext())
        {
            var loaded = await context.Users.SingleAsync(u => u.Id == user.Id);
            loaded.Address!.City = "Paris";
            await context.SaveChangesAsync();
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(2, rows.Count);
        Assert.Equal(user.Id.ToString("D"), rows[1].UserId);
        Assert.Equal("Paris", OutboxReader.Traits(rows[1]).GetProperty(ThrivestackTraits.City).GetString());
    }

    [Fact]
    public async Task SaveChanges_OwnedInstanceReplaced_WritesEventForOwner()
    {
        var user = await SeedUserAsync();
        await using (var context = NewContext())
        {
            var loaded = await context.Users.SingleAsync(u => u.Id == user.Id);
            loaded.Address = new Address { City = "Rome", Street = "Via Appia" };
            await context.SaveChangesAsync();
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(2, rows.Count);
        Assert.Equal("Rome", OutboxReader.Traits(rows[1]).GetProperty(ThrivestackTraits.City).GetString());
    }

    [Fact]
    public async Task SaveChanges_DeletedUser_WritesNoEvent()
    {
        var user = await SeedUserAsync();
        await using (var context = NewContext())
        {
            context.Users.Remove(await context.Users.SingleAsync(u => u.Id == user.Id));
            await context.SaveChangesAsync();
        }

        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    [Fact]
    public async Task SaveChanges_NewMembershipOfTrackedUser_WritesEventWithGroupIdAndTraits()
    {
        var userId = Guid.NewGuid();
        await using (var context = NewContext())
        {
            var user = NewUser();
            user.Id = userId;
            context.Users.Add(user);
            context.TeamMembers.Add(new TeamMember { UserId = userId, TeamId = "team-7", Role = "owner" });
            await context.SaveChangesAsync();
        }

        var row = Assert.Single(await OutboxReader.RowsAsync(Database));
        var json = OutboxReader.Json(row);
        Assert.Equal(userId.ToString("D"), json.GetProperty("user_id").GetString());
        Assert.Equal("team-7", json.GetProperty("context").GetProperty("group_id").GetString());
        Assert.Equal("ada@example.com", json.GetProperty("traits").GetProperty("email").GetString());
        Assert.Equal("team-7", row.GroupId);
        Assert.Equal(OutboxEventKind.Membership, row.Kind);
    }

    [Fact]
    public async Task SaveChanges_NewMembershipOfUntrackedUser_WritesEventWithGroupIdOnly()
    {
        var userId = Guid.NewGuid();
        await using (var context = NewContext())
        {
            context.TeamMembers.Add(new TeamMember { UserId = userId, TeamId = "team-9", Role = "member" });
            await context.SaveChangesAsync();
        }

        var json = OutboxReader.Json(Assert.Single(await OutboxReader.RowsAsync(Database)));
        Assert.Equal(userId.ToString("D"), json.GetProperty("user_id").GetString());
        Assert.Equal("team-9", json.GetProperty("context").GetProperty("group_id").GetString());
        Assert.False(json.TryGetProperty("traits", out _));
    }

    [Fact]
    public async Task SaveChanges_MembershipRoleChangedOrDeleted_WritesNoEvent()
    {
        var userId = Guid.NewGuid();
        await using (var context = NewContext())
        {
            context.TeamMembers.Add(new TeamMember { UserId = userId, TeamId = "team-1", Role = "member" });
            await context.SaveChangesAsync();
        }

        await using (var context = NewContext())
        {
            var member = await context.TeamMembers.SingleAsync();
            member.Role = "admin";
            await context.SaveChangesAsync();
            context.TeamMembers.Remove(member);
            await context.SaveChangesAsync();
        }

        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    [Fact]
    public async Task SaveChanges_MembershipMovedToOtherGroup_WritesEventWithNewGroup()
    {
        var (userId, workspaceId) = await SeedNumberedMembershipAsync();
        await using (var context = NewContext())
        {
            var other = new Workspace { Name = "Other" };
            context.Workspaces.Add(other);
            await context.SaveChangesAsync();
            var member = await context.Members.SingleAsync();
            member.WorkspaceId = other.Id;
            await context.SaveChangesAsync();
            workspaceId = other.Id;
        }

        var last = (await OutboxReader.RowsAsync(Database))[^1];
        Assert.Equal(userId.ToString(CultureInfo.InvariantCulture), last.UserId);
        Assert.Equal(workspaceId.ToString(CultureInfo.InvariantCulture), last.GroupId);
    }

    /// <summary>
    /// Two contexts load the same user and each changes a different trait; EF writes only the columns a context changed,
    /// so the row holds both changes. The last event must say what the row holds, not the second context's stale copy of
    /// the trait it did not change (that event is the newest and wins at ThriveStack).
    /// </summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task SaveChanges_UserChangedElsewhereSinceThisContextLoadedIt_EventCarriesTheTraitsAsSaved(bool async, bool inAppTransaction)
    {
        var user = NewUser();
        await using (var seed = NewContext())
        {
            seed.Users.Add(user);
            seed.Entry(user).Property("Plan").CurrentValue = "free";
            await seed.SaveChangesAsync();
        }

        await using var stale = NewContext();
        var loaded = await stale.Users.SingleAsync(u => u.Id == user.Id);
        await using (var other = NewContext())
        {
            var edited = await other.Users.SingleAsync(u => u.Id == user.Id);
            edited.LastName = "Lovelace";
            edited.Phones = ["+4400000000"];
            edited.Age = 37;
            edited.Address!.City = "Paris";
            other.Entry(edited).Property("Plan").CurrentValue = "team";
            await other.SaveChangesAsync();
        }

        loaded.FirstName = "Augusta";
        if (inAppTransaction)
        {
            await using var transaction = await stale.Database.BeginTransactionAsync();
            await Save(stale, async);
            await transaction.CommitAsync();
        }
        else
        {
            await Save(stale, async);
        }

        var last = (await OutboxReader.RowsAsync(Database)).OrderBy(r => r.Id).Last();
        var traits = OutboxReader.Traits(last);
        Assert.Equal("Augusta", traits.GetProperty(ThrivestackTraits.FirstName).GetString());
        Assert.Equal("Lovelace", traits.GetProperty(ThrivestackTraits.LastName).GetString());
        Assert.Equal(["+4400000000"], traits.GetProperty(ThrivestackTraits.Phone).EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(37, traits.GetProperty("age").GetInt32());
        Assert.Equal("Paris", traits.GetProperty(ThrivestackTraits.City).GetString());
        Assert.Equal("team", traits.GetProperty("plan").GetString());
        Assert.Equal("ada@example.com", traits.GetProperty("email").GetString());
        Assert.Equal(JsonValueKind.True, traits.GetProperty("verified").ValueKind);
        Assert.Equal("2026-01-02T03:04:05.0000000Z", traits.GetProperty(ThrivestackTraits.ActiveAt).GetString());

        // The context itself is left as the app left it: its copy of the other traits is not refreshed.
        Assert.Null(loaded.LastName);
    }

    /// <summary>
    /// An edit's event is read back from the row after EF's UPDATE, which may have waited for another save's lock on it: it
    /// is stamped when it is read, not when the save began, so the event that carries the row as both saves left it is
    /// also the one with the later time.
    /// </summary>
    [Fact]
    public async Task SaveChanges_UserEditWhoseUpdateTakesTime_EventIsStampedWhenItsTraitsAreRead()
    {
        var user = NewUser();
        await using (var seed = NewContext())
        {
            seed.Users.Add(user);
            await seed.SaveChangesAsync();
        }

        var builder = new DbContextOptionsBuilder<TestDbContext>();
        Database.Configure(builder);
        builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(Clock)).AddInterceptors(new ClockAdvancingCommand(Clock, TimeSpan.FromSeconds(2)));
        await using (var context = new TestDbContext(builder.Options))
        {
            (await context.Users.SingleAsync(u => u.Id == user.Id)).FirstName = "Augusta";
            await context.SaveChangesAsync();
        }

        var last = (await OutboxReader.RowsAsync(Database)).OrderBy(r => r.Id).Last();
        Assert.Equal(Clock.GetUtcNow().UtcDateTime, last.CreatedAt);
        Assert.Equal(Clock.GetUtcNow().UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture), OutboxReader.Json(last).GetProperty("timestamp").GetString());
    }

    [Fact]
    public async Task SaveChanges_MembershipOfAUserRenamedElsewhereSinceLoaded_CarriesTheUsersTraitsAsSaved()
    {
        var userId = await SeedNumberedUserAsync();
        await using var stale = NewContext();
        await stale.NumberedUsers.SingleAsync(u => u.Id == userId);
        await using (var other = NewContext())
        {
            (await other.NumberedUsers.SingleAsync(u => u.Id == userId)).Name = "After";
            await other.SaveChangesAsync();
        }

        var workspace = new Workspace { Name = "Analytical Engines" };
        stale.Workspaces.Add(workspace);
        stale.Members.Add(new WorkspaceMember { UserId = userId, Workspace = workspace });
        await stale.SaveChangesAsync();

        var last = (await OutboxReader.RowsAsync(Database)).OrderBy(r => r.Id).Last();
        Assert.Equal(OutboxEventKind.Membership, last.Kind);
        Assert.Equal("After", OutboxReader.Traits(last).GetProperty(ThrivestackTraits.FullName).GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_MembershipMovedToAnotherExistingUser_WritesOneEventForThatUserWithTheGroup(bool newUserLoaded)
    {
        var (formerId, workspaceId) = await SeedNumberedMembershipAsync();
        var otherId = await SeedNumberedUserAsync();
        await using (var context = NewContext())
        {
            if (newUserLoaded)
            {
                await context.NumberedUsers.SingleAsync(u => u.Id == otherId);
            }

            var member = await context.Members.SingleAsync();
            member.UserId = otherId;
            await context.SaveChangesAsync();
        }

        // The seeds wrote one event each; the move one more, for the member's new user, nothing for the former one.
        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(3, rows.Count);
        var moved = rows[^1];
        var json = OutboxReader.Json(moved);
        Assert.Equal(otherId.ToString(CultureInfo.InvariantCulture), json.GetProperty("user_id").GetString());
        Assert.Equal(workspaceId.ToString(CultureInfo.InvariantCulture), json.GetProperty("context").GetProperty("group_id").GetString());
        Assert.Equal(workspaceId.ToString(CultureInfo.InvariantCulture), moved.GroupId);
        Assert.Equal(OutboxEventKind.Membership, moved.Kind);
        Assert.DoesNotContain(rows.Skip(2), r => r.UserId == formerId.ToString(CultureInfo.InvariantCulture));
        if (newUserLoaded)
        {
            Assert.Equal("c@example.com", json.GetProperty("traits").GetProperty("email").GetString());
        }
        else
        {
            Assert.False(json.TryGetProperty("traits", out _));
        }
    }

    [Fact]
    public async Task SaveChanges_MembershipMovedToAUserAddedInTheSameSave_WritesOneEventWithTheRealKeyTraitsAndGroup()
    {
        var (formerId, workspaceId) = await SeedNumberedMembershipAsync();
        var newcomer = new NumberedUser { Email = "newcomer@example.com", Name = "Nadia" };
        await using (var context = NewContext())
        {
            var member = await context.Members.SingleAsync();
            member.User = newcomer;
            await context.SaveChangesAsync();
        }

        // The newcomer registers and takes the membership over in one save: one event, with its traits and the group.
        var rows = (await OutboxReader.RowsAsync(Database)).Skip(1).ToList();
        var row = Assert.Single(rows);
        var json = OutboxReader.Json(row);
        Assert.NotEqual(formerId, newcomer.Id);
        Assert.Equal(newcomer.Id.ToString(CultureInfo.InvariantCulture), json.GetProperty("user_id").GetString());
        Assert.Equal(workspaceId.ToString(CultureInfo.InvariantCulture), json.GetProperty("context").GetProperty("group_id").GetString());
        Assert.Equal("newcomer@example.com", json.GetProperty("traits").GetProperty("email").GetString());
        Assert.Equal("Nadia", json.GetProperty("traits").GetProperty(ThrivestackTraits.FullName).GetString());
    }

    [Fact]
    public async Task SaveChanges_RolledBackTransaction_WritesNoOutboxRow()
    {
        await using (var context = NewContext())
        {
            await using var transaction = await context.Database.BeginTransactionAsync();
            context.Users.Add(NewUser());
            context.NumberedUsers.Add(new NumberedUser { Email = "n@example.com" });
            await context.SaveChangesAsync();
            await transaction.RollbackAsync();
        }

        Assert.Empty(await OutboxReader.RowsAsync(Database));
        await using var check = NewContext();
        Assert.Empty(await check.Users.ToListAsync());
    }

    [Fact]
    public async Task SaveChanges_SameContextAfterRolledBackTransaction_SavesAgainWithoutTrackingConflicts()
    {
        await using (var context = NewContext())
        {
            await using (var transaction = await context.Database.BeginTransactionAsync())
            {
                context.Users.Add(NewUser("first@example.com"));
                await context.SaveChangesAsync();
                await transaction.RollbackAsync();
            }

            // The database may hand out the rolled-back outbox key again: nothing of ours may still be tracked with it.
            context.Users.Add(NewUser("second@example.com"));
            await context.SaveChangesAsync();
            context.Users.Add(NewUser("third@example.com"));
            await context.SaveChangesAsync();
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(["second@example.com", "third@example.com"], rows.Select(r => OutboxReader.Traits(r).GetProperty("email").GetString()));
    }

    [Fact]
    public async Task SaveChanges_CommittedTransaction_WritesRowsWithRealKeys()
    {
        int numberedId;
        await using (var context = NewContext())
        {
            await using var transaction = await context.Database.BeginTransactionAsync();
            var numbered = new NumberedUser { Email = "n@example.com", Name = "Nia" };
            context.NumberedUsers.Add(numbered);
            context.Users.Add(NewUser());
            await context.SaveChangesAsync();
            await transaction.CommitAsync();
            numberedId = numbered.Id;
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(2, rows.Count);
        Assert.Contains(rows, r => r.UserId == numberedId.ToString(CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_InTransactionGivenWithUseTransactionThenCommitted_WritesOneRowInsideItBeforeTheCommit(bool storeGeneratedKey)
    {
        await using var connection = Database.CreateConnection();
        await connection.OpenAsync();
        string userId;
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await using var context = NewContext();
            context.Database.SetDbConnection(connection);
            await context.Database.UseTransactionAsync(transaction);
            var savedId = AddNewUser(context, storeGeneratedKey);
            await context.SaveChangesAsync();
            userId = savedId();

            // Right after the save, before the commit: the row is in the application's transaction, and only there.
            Assert.Equal([userId], await context.Set<OutboxMessage>().Select(m => m.UserId).ToListAsync());
            Assert.Empty(await OutboxReader.RowsAsync(Database));
            await transaction.CommitAsync();
        }

        var row = Assert.Single(await OutboxReader.RowsAsync(Database));
        Assert.Equal(userId, row.UserId);
        Assert.Equal(userId, OutboxReader.Json(row).GetProperty("user_id").GetString());
        Assert.Equal("use@example.com", OutboxReader.Traits(row).GetProperty("email").GetString());
        Assert.Equal(1, await CountUsersAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_InTransactionGivenWithUseTransactionThenRolledBack_LeavesNeitherTheUserNorARow(bool storeGeneratedKey)
    {
        await using var connection = Database.CreateConnection();
        await connection.OpenAsync();
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await using var context = NewContext();
            context.Database.SetDbConnection(connection);
            await context.Database.UseTransactionAsync(transaction);
            AddNewUser(context, storeGeneratedKey);
            await context.SaveChangesAsync();
            Assert.Equal(1, await context.Set<OutboxMessage>().CountAsync());
            await transaction.RollbackAsync();
        }

        Assert.Empty(await OutboxReader.RowsAsync(Database));
        Assert.Equal(0, await CountUsersAsync());
    }

    [Fact]
    public async Task SaveChanges_SyncInTransactionGivenWithUseTransaction_WritesOneRowThatCommitsOrRollsBackWithIt()
    {
        using var connection = Database.CreateConnection();
        connection.Open();
        using (var transaction = connection.BeginTransaction())
        {
            using var context = NewContext();
            context.Database.SetDbConnection(connection);
            context.Database.UseTransaction(transaction);
            AddNewUser(context, storeGeneratedKey: true);
            context.SaveChanges();
            Assert.Equal(1, context.Set<OutboxMessage>().Count());
            transaction.Rollback();
        }

        Assert.Empty(await OutboxReader.RowsAsync(Database));
        string userId;
        using (var transaction = connection.BeginTransaction())
        {
            using var context = NewContext();
            context.Database.SetDbConnection(connection);
            context.Database.UseTransaction(transaction);
            var savedId = AddNewUser(context, storeGeneratedKey: true);
            context.SaveChanges();
            userId = savedId();
            Assert.Empty(await OutboxReader.RowsAsync(Database));
            transaction.Commit();
        }

        Assert.Equal(userId, Assert.Single(await OutboxReader.RowsAsync(Database)).UserId);
        Assert.Equal(1, await CountUsersAsync());
    }

    [Fact]
    public async Task SaveChanges_UniqueIndexViolation_WritesNoRowAndRetryWritesOne()
    {
        await SeedUserAsync("taken@example.com");
        await using (var context = NewContext())
        {
            var user = NewUser("taken@example.com");
            context.Users.Add(user);
            await Assert.ThrowsAsync<DbUpdateException>(() => context.SaveChangesAsync());
            Assert.DoesNotContain(context.ChangeTracker.Entries<OutboxMessage>(), e => e.State != EntityState.Detached);

            user.Email = "free@example.com";
            await context.SaveChangesAsync();
            Assert.Empty(context.ChangeTracker.Entries<OutboxMessage>());
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(2, rows.Count);
        Assert.Equal("free@example.com", OutboxReader.Traits(rows[1]).GetProperty("email").GetString());
    }

    [Fact]
    public async Task SaveChanges_UniqueIndexViolationSync_WritesNoRowAndRetryWritesOne()
    {
        await SeedUserAsync("taken@example.com");
        using (var context = NewContext())
        {
            var user = NewUser("taken@example.com");
            context.Users.Add(user);
            Assert.Throws<DbUpdateException>(() => context.SaveChanges());
            user.Email = "free@example.com";
            context.SaveChanges();
        }

        Assert.Equal(2, (await OutboxReader.RowsAsync(Database)).Count);
    }

    [Fact]
    public async Task SaveChanges_ConflictInASaveWithNothingToCapture_TurnsDetectionBackOn()
    {
        var id = await SeedNumberedUserAsync();

        await using (var context = NewContext())
        {
            var numbered = await context.NumberedUsers.SingleAsync(u => u.Id == id);
            await ChangeVersionElsewhereAsync(id);

            // Only non-trait columns change: detection stays off for this save, and the conflict (for which EF calls
            // no interceptor) must still turn it back on.
            numbered.Notes = "stale";
            await Assert.ThrowsAsync<DbUpdateConcurrencyException>(() => context.SaveChangesAsync());
            Assert.True(context.ChangeTracker.AutoDetectChangesEnabled);
        }
    }

    [Fact]
    public async Task SaveChanges_ConcurrencyConflictSuppressedByTheApp_KeepsTheEventsOfTheSave()
    {
        var id = await SeedNumberedUserAsync();

        var builder = new DbContextOptionsBuilder<TestDbContext>();
        Database.Configure(builder);
        builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(Clock)).AddInterceptors(new IgnoreConcurrencyConflicts());
        // A store-generated key: its event is written at commit, after the conflict.
        var newcomer = new NumberedUser { Email = "newcomer@example.com", Name = "Newcomer" };
        await using (var context = new TestDbContext(builder.Options))
        {
            var numbered = await context.NumberedUsers.SingleAsync(u => u.Id == id);
            await ChangeVersionElsewhereAsync(id);

            numbered.Name = "After";
            context.NumberedUsers.Add(newcomer);

            // The application's interceptor (after this library's) decides the conflict does not matter: EF goes on
            // and the save succeeds, so the events of what it saved must be there.
            await context.SaveChangesAsync();
            Assert.Empty(context.ChangeTracker.Entries<OutboxMessage>());
            Assert.True(context.ChangeTracker.AutoDetectChangesEnabled);
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Single(rows, r => r.UserId == newcomer.Id.ToString(CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task SaveChanges_ConcurrencyConflict_WritesNoRowAndRetryWritesOne()
    {
        var id = await SeedNumberedUserAsync();

        await using (var context = NewContext())
        {
            var numbered = await context.NumberedUsers.SingleAsync(u => u.Id == id);
            await ChangeVersionElsewhereAsync(id);

            numbered.Name = "After";
            await Assert.ThrowsAsync<DbUpdateConcurrencyException>(() => context.SaveChangesAsync());
            Assert.Single(await OutboxReader.RowsAsync(Database));
            Assert.True(context.ChangeTracker.AutoDetectChangesEnabled);

            await context.Entry(numbered).ReloadAsync();
            numbered.Name = "After";
            await context.SaveChangesAsync();
            Assert.Empty(context.ChangeTracker.Entries<OutboxMessage>());
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(2, rows.Count);
        Assert.Equal("After", OutboxReader.Traits(rows[1]).GetProperty(ThrivestackTraits.FullName).GetString());
    }

    [Fact]
    public async Task SaveChanges_OwnedTraitAddedToUserDeletedMeanwhile_FailsAndWritesNoRow()
    {
        // Adding an owned entity that shares its owner's table updates the owner's row: EF finds the row gone only after
        // the server ran its command, so the event must not be in a command that commits on its own.
        var user = NewUser("owned@example.com");
        user.Address = null;
        await using (var seed = NewContext())
        {
            seed.Users.Add(user);
            await seed.SaveChangesAsync();
        }

        await using var context = NewContext();
        var loaded = await context.Users.SingleAsync(u => u.Id == user.Id);
        await using (var other = NewContext())
        {
            await other.Users.Where(u => u.Id == user.Id).ExecuteDeleteAsync();
        }

        loaded.Address = new Address { City = "Paris" };
        await Assert.ThrowsAsync<DbUpdateConcurrencyException>(() => context.SaveChangesAsync());

        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    [Fact]
    public async Task SaveChanges_Cancelled_WritesNoRowAndRetryWritesOne()
    {
        await using (var context = NewContext())
        {
            context.Users.Add(NewUser());
            using var cancelled = new CancellationTokenSource();
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => context.SaveChangesAsync(cancelled.Token));
            await context.SaveChangesAsync();
        }

        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task SaveChanges_IdentityUserWithMembershipAndWorkspace_WritesRealKeys(bool explicitTransaction, bool async)
    {
        var previous = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = new CultureInfo("ar-SA");
        try
        {
            NumberedUser user;
            Workspace workspace;
            await using (var context = NewContext())
            {
                // Burn a few keys, so a temporary value and the real key cannot coincide.
                context.NumberedUsers.AddRange(new NumberedUser { Email = "a@x" }, new NumberedUser { Email = "b@x" });
                await Save(context, async);
            }

            await using (var context = NewContext())
            {
                var transaction = explicitTransaction ? await context.Database.BeginTransactionAsync() : null;
                user = new NumberedUser { Email = "new@example.com", Name = "Nia" };
                workspace = new Workspace { Name = "Acme" };
                context.Members.Add(new WorkspaceMember { User = user, Workspace = workspace });
                await Save(context, async);
                if (transaction is not null)
                {
                    await transaction.CommitAsync();
                    await transaction.DisposeAsync();
                }
            }

            var rows = (await OutboxReader.RowsAsync(Database)).Skip(2).ToList();
            var row = Assert.Single(rows);
            var json = OutboxReader.Json(row);
            Assert.Equal(user.Id.ToString(CultureInfo.InvariantCulture), json.GetProperty("user_id").GetString());
            Assert.True(user.Id > 0);
            Assert.Equal(workspace.Id.ToString(CultureInfo.InvariantCulture), json.GetProperty("context").GetProperty("group_id").GetString());
            Assert.Equal("new@example.com", json.GetProperty("traits").GetProperty("email").GetString());
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_SingleIdentityUserWithoutTransaction_WritesRealKeyAtomically(bool async)
    {
        NumberedUser user;
        await using (var context = NewContext())
        {
            user = new NumberedUser { Email = "solo@example.com" };
            context.NumberedUsers.Add(user);
            await Save(context, async);
            Assert.Equal(AutoTransactionBehavior.WhenNeeded, context.Database.AutoTransactionBehavior);
        }

        var row = Assert.Single(await OutboxReader.RowsAsync(Database));
        Assert.Equal(user.Id.ToString(CultureInfo.InvariantCulture), row.UserId);
    }

    [Fact]
    public async Task SaveChanges_IdentityUserInRolledBackTransaction_WritesNoRow()
    {
        await using (var context = NewContext())
        {
            await using var transaction = await context.Database.BeginTransactionAsync();
            context.NumberedUsers.Add(new NumberedUser { Email = "gone@example.com" });
            await context.SaveChangesAsync();
            await transaction.RollbackAsync();
        }

        Assert.Empty(await OutboxReader.RowsAsync(Database));
    }

    [Fact]
    public async Task SaveChanges_IdentityUserWithAutoTransactionsOff_ThrowsAndWritesNothing()
    {
        await using (var context = NewContext())
        {
            context.Database.AutoTransactionBehavior = AutoTransactionBehavior.Never;
            context.NumberedUsers.Add(new NumberedUser { Email = "never@example.com" });
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => context.SaveChangesAsync());
            Assert.Contains("AutoTransactionBehavior", error.Message);
            Assert.Contains("BeginTransaction", error.Message);
        }

        await using var check = NewContext();
        Assert.Empty(await check.NumberedUsers.ToListAsync());
        Assert.Empty(await OutboxReader.RowsAsync(Database));
    }

    [Fact]
    public async Task SaveChanges_UnmappedEntityOnly_WritesNothingAndTracksNothingOfOurs()
    {
        await using var context = NewContext();
        context.Audit.Add(new AuditEntry { Text = "hello" });
        Assert.Equal(1, await context.SaveChangesAsync());
        Assert.Single(context.ChangeTracker.Entries());
        Assert.Empty(await OutboxReader.RowsAsync(Database));
    }

    [Fact]
    public async Task SaveChanges_LongLivedContext_DetachesOutboxRowsAfterEachSave()
    {
        await using var context = NewContext();
        for (var i = 0; i < 5; i++)
        {
            context.Users.Add(NewUser($"u{i}@example.com"));
            await context.SaveChangesAsync();
            Assert.Empty(context.ChangeTracker.Entries<OutboxMessage>());
        }

        Assert.Equal(5, (await OutboxReader.RowsAsync(Database)).Count);
    }

    [Fact]
    public async Task SaveChanges_NothingToCapture_DetectsChangesAsOftenAsWithout()
    {
        var user = await SeedUserAsync();
        int withInterceptor, without;
        await using (var context = NewContext())
        {
            var loaded = await context.Users.SingleAsync(u => u.Id == user.Id);
            loaded.LoginCount = 3;
            withInterceptor = await CountDetectChangesAsync(context);
            Assert.True(context.ChangeTracker.AutoDetectChangesEnabled);
        }

        var plain = new DbContextOptionsBuilder<TestDbContext>();
        Database.Configure(plain);
        await using (var context = new TestDbContext(plain.Options))
        {
            var loaded = await context.Users.SingleAsync(u => u.Id == user.Id);
            loaded.LoginCount = 4;
            without = await CountDetectChangesAsync(context);
        }

        Assert.True(without >= 1);
        Assert.Equal(without, withInterceptor);
        await using (var check = NewContext())
        {
            Assert.Equal(4, (await check.Users.SingleAsync(u => u.Id == user.Id)).LoginCount);
        }
    }

    [Fact]
    public async Task SaveChanges_AppInterceptorAfterThisOne_ChangesEntitiesThatAreStillSaved()
    {
        var user = await SeedUserAsync();
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        Database.Configure(builder);
        var stamp = new StampLoginCount();
        builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(Clock)).AddInterceptors(stamp);
        int detections;
        await using (var context = new TestDbContext(builder.Options))
        {
            stamp.Target = await context.Users.SingleAsync(u => u.Id == user.Id);
            detections = await CountDetectChangesAsync(context);
            Assert.True(context.ChangeTracker.AutoDetectChangesEnabled);
        }

        // The application's interceptor runs after this library's and sets a property directly: EF's own
        // DetectChanges pass runs to see it, and the library captures in that pass instead of running one of its own.
        Assert.Equal(1, detections);
        await using (var context = NewContext())
        {
            Assert.Equal(StampLoginCount.Value, (await context.Users.SingleAsync(u => u.Id == user.Id)).LoginCount);
        }

        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_AnotherLibrarysInjectedSaveInterceptor_NeverSeesDetectionOff(bool registeredFirst)
    {
        var user = await SeedUserAsync();
        var other = new RecordDetectionState();
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        Database.Configure(builder);
        var infrastructure = (IDbContextOptionsBuilderInfrastructure)builder;
        if (registeredFirst)
        {
            infrastructure.AddOrUpdateExtension(new InjectedInterceptorExtension(other));
        }

        builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(Clock));
        if (!registeredFirst)
        {
            infrastructure.AddOrUpdateExtension(new InjectedInterceptorExtension(other));
        }

        int detections;
        await using (var context = new TestDbContext(builder.Options))
        {
            var loaded = await context.Users.SingleAsync(u => u.Id == user.Id);
            loaded.LoginCount = 5;
            detections = await CountDetectChangesAsync(context);
        }

        // Another save interceptor in EF's internal services (as another library registers one): EF's own pass
        // runs (the library captures in it), and that interceptor finds detection on in every callback, before or
        // after this library's.
        Assert.Equal(1, detections);
        Assert.Equal([true, true], other.Seen);
        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_AnyOutcome_LeavesAutoDetectChangesOn(bool async)
    {
        await SeedUserAsync("taken@example.com");
        await using var context = NewContext();

        // A save with nothing to capture, a failing save, then changes made after it: all detected.
        var loaded = await context.Users.SingleAsync();
        loaded.LoginCount = 7;
        await Save(context, async);
        Assert.True(context.ChangeTracker.AutoDetectChangesEnabled);

        var duplicate = NewUser("taken@example.com");
        context.Users.Add(duplicate);
        await Assert.ThrowsAsync<DbUpdateException>(() => Save(context, async));
        Assert.True(context.ChangeTracker.AutoDetectChangesEnabled);

        duplicate.Email = "free@example.com";
        loaded.FirstName = "After the failure";
        await Save(context, async);
        Assert.True(context.ChangeTracker.AutoDetectChangesEnabled);

        await using var check = NewContext();
        Assert.Equal(2, await check.Users.CountAsync());
        Assert.Equal("After the failure", (await check.Users.SingleAsync(u => u.Id == loaded.Id)).FirstName);
        Assert.Equal(7, (await check.Users.SingleAsync(u => u.Id == loaded.Id)).LoginCount);
    }

    [Fact]
    public async Task SaveChanges_AppTurnedAutoDetectOff_KeepsItOffAndDetectsNothing()
    {
        var user = await SeedUserAsync();
        await using (var context = NewContext())
        {
            context.ChangeTracker.AutoDetectChangesEnabled = false;
            var loaded = await context.Users.SingleAsync(u => u.Id == user.Id);
            loaded.FirstName = "Not detected";
            await context.SaveChangesAsync();
            Assert.False(context.ChangeTracker.AutoDetectChangesEnabled);
        }

        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    [Fact]
    public async Task ModelMap_IsBuiltOncePerModel()
    {
        await using var first = NewContext();
        await using var second = NewContext();
        Assert.Same(first.Model, second.Model);
        Assert.Same(global::Thrivestack.EfCore.Mapping.ModelMap.For(first.Model), global::Thrivestack.EfCore.Mapping.ModelMap.For(second.Model));
    }

    [Fact]
    public async Task EnqueueThrivestackIdentify_WithoutTransaction_JoinsNextSaveChanges()
    {
        await using (var context = NewContext())
        {
            context.EnqueueThrivestackIdentify("ext-42", new Dictionary<string, object?> { ["email"] = "bulk@example.com", ["seats"] = 3 }, "acme");
            Assert.Empty(await OutboxReader.RowsAsync(Database));
            await context.SaveChangesAsync();
            Assert.Empty(context.ChangeTracker.Entries<OutboxMessage>());
        }

        var json = OutboxReader.Json(Assert.Single(await OutboxReader.RowsAsync(Database)));
        Assert.Equal("ext-42", json.GetProperty("user_id").GetString());
        Assert.Equal(3, json.GetProperty("traits").GetProperty("seats").GetInt32());
        Assert.Equal("acme", json.GetProperty("context").GetProperty("group_id").GetString());
    }

    [Fact]
    public async Task EnqueueThrivestackIdentify_AfterFailedSave_IsKeptForTheRetry()
    {
        await SeedUserAsync("taken@example.com");
        await using (var context = NewContext())
        {
            var user = NewUser("taken@example.com");
            context.Users.Add(user);
            context.EnqueueThrivestackIdentify("manual-1");
            await Assert.ThrowsAsync<DbUpdateException>(() => context.SaveChangesAsync());
            user.Email = "other@example.com";
            await context.SaveChangesAsync();
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(3, rows.Count);
        Assert.Single(rows, r => r.UserId == "manual-1");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task EnqueueThrivestackIdentifyAsync_InTransactionWithExecuteUpdate_FollowsTheTransaction(bool commit)
    {
        var user = await SeedUserAsync();
        await using (var context = NewContext())
        {
            await using var transaction = await context.Database.BeginTransactionAsync();
            await context.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.FirstName, "Bulk"));
            await context.EnqueueThrivestackIdentifyAsync(user.Id.ToString(), new Dictionary<string, object?> { [ThrivestackTraits.FirstName] = "Bulk" });
            if (commit)
            {
                await transaction.CommitAsync();
            }
            else
            {
                await transaction.RollbackAsync();
            }
        }

        var rows = await OutboxReader.RowsAsync(Database);
        Assert.Equal(commit ? 2 : 1, rows.Count);
        if (commit)
        {
            Assert.Equal("Bulk", OutboxReader.Traits(rows[1]).GetProperty(ThrivestackTraits.FirstName).GetString());
        }
    }

    [Fact]
    public async Task AddThrivestackIdentifyInterceptor_CalledTwice_WritesOneEventPerChange()
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        Database.Configure(builder);
        builder.AddThrivestackIdentifyInterceptor().AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(Clock));
        await using (var context = new TestDbContext(builder.Options))
        {
            context.Users.Add(NewUser());
            await context.SaveChangesAsync();
        }

        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    /// <summary>A saved user with a concurrency token (and a store-generated key); returns its id.</summary>
    protected async Task<int> SeedNumberedUserAsync()
    {
        await using var context = NewContext();
        var numbered = new NumberedUser { Email = "c@example.com", Name = "Before" };
        context.NumberedUsers.Add(numbered);
        await context.SaveChangesAsync();
        return numbered.Id;
    }

    /// <summary>Another context changes the user's concurrency token, so a save from a stale context conflicts.</summary>
    protected async Task ChangeVersionElsewhereAsync(int id)
    {
        await using var other = NewContext();
        (await other.NumberedUsers.SingleAsync(u => u.Id == id)).Version++;
        await other.SaveChangesAsync();
    }

    protected async Task<AppUser> SeedUserAsync(string email = "ada@example.com")
    {
        var user = NewUser(email);
        await using var context = NewContext();
        context.Users.Add(user);
        context.Entry(user).Property("Plan").CurrentValue = "free";
        await context.SaveChangesAsync();
        return user;
    }

    /// <summary>
    /// Adds a new user with a client-generated (Guid) or a store-generated (identity int) key and the email
    /// <c>use@example.com</c>; returns how to read its id once saved (a store-generated key is known only then).
    /// </summary>
    private static Func<string> AddNewUser(TestDbContext context, bool storeGeneratedKey)
    {
        if (storeGeneratedKey)
        {
            var numbered = new NumberedUser { Email = "use@example.com", Name = "Ulla" };
            context.NumberedUsers.Add(numbered);
            return () => numbered.Id.ToString(CultureInfo.InvariantCulture);
        }

        var user = NewUser("use@example.com");
        context.Users.Add(user);
        return () => user.Id.ToString("D");
    }

    /// <summary>The committed users of both key kinds, read by a context of its own.</summary>
    private async Task<int> CountUsersAsync()
    {
        await using var check = NewContext();
        return await check.Users.CountAsync() + await check.NumberedUsers.CountAsync();
    }

    private async Task<(int UserId, long WorkspaceId)> SeedNumberedMembershipAsync()
    {
        await using var context = NewContext();
        var member = new WorkspaceMember { User = new NumberedUser { Email = "m@example.com" }, Workspace = new Workspace { Name = "First" } };
        context.Members.Add(member);
        await context.SaveChangesAsync();
        return (member.UserId, member.WorkspaceId);
    }

    /// <summary>A save interceptor that notes whether change detection is on when it runs.</summary>
    private sealed class RecordDetectionState : SaveChangesInterceptor
    {
        public List<bool> Seen { get; } = [];

        public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            Seen.Add(eventData.Context!.ChangeTracker.AutoDetectChangesEnabled);
            return ValueTask.FromResult(result);
        }

        public override ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
        {
            Seen.Add(eventData.Context!.ChangeTracker.AutoDetectChangesEnabled);
            return ValueTask.FromResult(result);
        }
    }

    /// <summary>Registers a save interceptor in EF's internal services, the way a library's options extension does.</summary>
    private sealed class InjectedInterceptorExtension(IInterceptor interceptor) : IDbContextOptionsExtension
    {
        private DbContextOptionsExtensionInfo? info;

        public DbContextOptionsExtensionInfo Info => info ??= new ExtensionInfo(this, interceptor);

        public void ApplyServices(IServiceCollection services) => services.AddSingleton(interceptor);

        public void Validate(IDbContextOptions options)
        {
        }

        private sealed class ExtensionInfo(IDbContextOptionsExtension extension, IInterceptor interceptor) : DbContextOptionsExtensionInfo(extension)
        {
            public override bool IsDatabaseProvider => false;

            public override string LogFragment => "";

            public override int GetServiceProviderHashCode() => RuntimeHelpers.GetHashCode(interceptor);

            public override bool ShouldUseSameServiceProvider(DbContextOptionsExtensionInfo other) =>
                other is ExtensionInfo info && ReferenceEquals(info.Extension, Extension);

            public override void PopulateDebugInfo(IDictionary<string, string> debugInfo)
            {
            }
        }
    }

    /// <summary>An application interceptor that lets a save go on past a concurrency conflict.</summary>
    private sealed class IgnoreConcurrencyConflicts : SaveChangesInterceptor
    {
        public override InterceptionResult ThrowingConcurrencyException(ConcurrencyExceptionEventData eventData, InterceptionResult result) =>
            InterceptionResult.Suppress();

        public override ValueTask<InterceptionResult> ThrowingConcurrencyExceptionAsync(ConcurrencyExceptionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(InterceptionResult.Suppress());
    }

    /// <summary>An application interceptor that sets a property of a tracked user directly while a save starts.</summary>
    private sealed class StampLoginCount : SaveChangesInterceptor
    {
        public const int Value = 41;

        public AppUser? Target { get; set; }

        public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            Target?.LoginCount = Value;
            return ValueTask.FromResult(result);
        }
    }

    /// <summary>Moves the clock on when a save's UPDATE has run, as if the UPDATE had waited for another transaction's lock.</summary>
    private sealed class ClockAdvancingCommand(FakeTimeProvider clock, TimeSpan by) : DbCommandInterceptor
    {
        public override DbDataReader ReaderExecuted(DbCommand command, CommandExecutedEventData eventData, DbDataReader result)
        {
            Advance(command);
            return result;
        }

        public override ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken cancellationToken = default)
        {
            Advance(command);
            return ValueTask.FromResult(result);
        }

        public override int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
        {
            Advance(command);
            return result;
        }

        public override ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
        {
            Advance(command);
            return ValueTask.FromResult(result);
        }

        private void Advance(DbCommand command)
        {
            if (command.CommandText.Contains("UPDATE", StringComparison.Ordinal))
            {
                clock.Advance(by);
            }
        }
    }

    private static async Task<int> CountDetectChangesAsync(DbContext context)
    {
        var count = 0;
        context.ChangeTracker.DetectingAllChanges += (_, _) => count++;
        await context.SaveChangesAsync();
        return count;
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
