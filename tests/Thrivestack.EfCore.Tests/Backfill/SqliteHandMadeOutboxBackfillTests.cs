using System.Data.Common;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Backfill;

/// <summary>
/// The README's "(An outbox table without <c>AUTOINCREMENT</c>, not made by EF, is always read under the lock.)": on SQLite
/// a backfill chunk may read its users before it takes the write lock only when the outbox's AUTOINCREMENT sequence can
/// tell that no event was written in between. On a hand-made outbox table without it, every chunk reads in its own
/// transaction, after its first write took the lock; the backfill still enqueues and delivers every user once, and an
/// edit that commits right after a chunk's read is never overtaken by the chunk's older copy.
/// </summary>
public sealed class SqliteHandMadeOutboxBackfillTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync(new SqliteTestDatabase());

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task BackfillThrivestackAsync_HandMadeOutboxWithoutAutoincrement_ReadsEveryChunkUnderItsLockAndDeliversEveryUserOnce()
    {
        Assert.True(await CanReadBeforeLockAsync(), "EF's outbox table has AUTOINCREMENT");
        await ReplaceOutboxWithHandMadeTableAsync();
        Assert.False(await CanReadBeforeLockAsync());
        var (userIds, memberships) = await SeedAsync();
        await harness.StartHostAsync();
        var reads = new ChunkReads();

        ThrivestackBackfillResult result;
        await using (var context = BackfillContext(reads))
        {
            result = await context.BackfillThrivestackAsync(new ThrivestackBackfillOptions { ChunkSize = 3 });
        }

        Assert.True(result.Completed);
        Assert.Equal((userIds.Count, memberships.Count), (result.UsersEnqueued, result.MembershipsEnqueued));

        // Three users or memberships a chunk, so several chunks of each entity, and not one read outside its chunk's transaction.
        Assert.True(reads.InTransaction.Count >= (userIds.Count + memberships.Count) / 3, $"{reads.InTransaction.Count} chunk reads");
        Assert.Empty(reads.OutsideTransaction);

        await harness.StandIn.WaitForEventsAsync(userIds.Count + memberships.Count, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.All(r => r.State != OutboxRowState.Pending), Deadline);
        var events = harness.StandIn.Events;
        Assert.Equal(userIds.Order(StringComparer.Ordinal), events.Where(e => e.GroupId is null).Select(e => e.UserId).Order(StringComparer.Ordinal));
        Assert.Equal(memberships.Order(), events.Where(e => e.GroupId is not null).Select(e => (e.UserId, e.GroupId!)).Order());
    }

    [Fact]
    public async Task BackfillThrivestackAsync_HandMadeOutboxAndAnEditCommittingRightAfterTheChunkRead_NeverLeavesStaleTraits()
    {
        await ReplaceOutboxWithHandMadeTableAsync();
        int target;
        await using (var seed = PlainContext())
        {
            var users = Enumerable.Range(0, 4).Select(i => new NumberedUser { Email = $"n{i}@example.com" }).ToList();
            seed.NumberedUsers.AddRange(users);
            await seed.SaveChangesAsync();
            target = users[1].Id;
        }

        await harness.StartHostAsync();
        var edit = new EditRightAfterRead(harness, target);
        await using (var context = BackfillContext(edit))
        {
            Assert.True((await context.BackfillThrivestackAsync(new ThrivestackBackfillOptions { ChunkSize = 10 })).Completed);
        }

        await edit.Saved!.WaitAsync(Deadline);

        // The edit's event must be the user's last, whether the backfill's copy was delivered before it or coalesced away.
        var targetId = target.ToString(CultureInfo.InvariantCulture);
        await harness.StandIn.WaitUntilAsync(s => s.EventsFor(targetId).Any(e => e.Traits?.GetProperty("email").GetString() == EditRightAfterRead.Email), Deadline);
        await harness.WaitForOutboxAsync(rows => rows.All(r => r.State != OutboxRowState.Pending), Deadline);
        Assert.Equal(EditRightAfterRead.Email, harness.StandIn.EventsFor(targetId)[^1].Traits!.Value.GetProperty("email").GetString());
    }

    /// <summary>What the SQLite dialect says of the outbox table as it is now: may a chunk read before it takes the lock?</summary>
    private async Task<bool> CanReadBeforeLockAsync()
    {
        await using var context = harness.Database.CreateContext();
        await context.Database.OpenConnectionAsync();
        return await SqliteDialect.Instance.CanReadBeforeLockAsync(context, ModelMap.For(context.Model).RequireOutbox(), CancellationToken.None);
    }

    /// <summary>
    /// Drops EF's outbox table and creates it again by hand, as a script that was not generated by EF would: the same
    /// columns and indexes, but an <c>INTEGER PRIMARY KEY</c> without <c>AUTOINCREMENT</c>.
    /// </summary>
    private async Task ReplaceOutboxWithHandMadeTableAsync()
    {
        await using var connection = harness.Database.CreateConnection();
        await connection.OpenAsync();
        var table = (string)(await ReadAsync(connection, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'thrivestack_outbox'")).Single();
        var indexes = await ReadAsync(connection, "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'thrivestack_outbox' AND sql IS NOT NULL");
        Assert.Contains("AUTOINCREMENT", table, StringComparison.OrdinalIgnoreCase);
        var handMade = Regex.Replace(table, @"\s+AUTOINCREMENT", "", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        await using var transaction = await connection.BeginTransactionAsync();
        foreach (var sql in new[] { "DROP TABLE \"thrivestack_outbox\"", handMade }.Concat(indexes.Cast<string>()))
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = sql;
            await command.ExecuteNonQueryAsync();
        }

        await transaction.CommitAsync();
        Assert.DoesNotContain("AUTOINCREMENT", (string)(await ReadAsync(connection, "SELECT sql FROM sqlite_master WHERE name = 'thrivestack_outbox'")).Single(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(indexes.Count, (await ReadAsync(connection, "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'thrivestack_outbox' AND sql IS NOT NULL")).Count);
    }

    private static async Task<List<object>> ReadAsync(DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync();
        var values = new List<object>();
        while (await reader.ReadAsync())
        {
            values.Add(reader.GetValue(0));
        }

        return values;
    }

    /// <summary>Users of both key kinds and memberships of both kinds, saved before the library was adopted (no events).</summary>
    private async Task<(List<string> UserIds, List<(string UserId, string GroupId)> Memberships)> SeedAsync()
    {
        await using var context = PlainContext();
        var apps = Enumerable.Range(0, 3).Select(i => new AppUser { Id = Guid.NewGuid(), Email = $"app{i}@example.com" }).ToList();
        var numbered = Enumerable.Range(0, 7).Select(i => new NumberedUser { Email = $"n{i}@example.com" }).ToList();
        var workspace = new Workspace { Name = "Acme" };
        var teams = Enumerable.Range(0, 2).Select(i => new TeamMember { UserId = apps[i].Id, TeamId = $"team-{i}", Role = "member" }).ToList();
        context.Users.AddRange(apps);
        context.NumberedUsers.AddRange(numbered);
        context.Workspaces.Add(workspace);
        context.TeamMembers.AddRange(teams);
        await context.SaveChangesAsync();
        var members = numbered.Take(3).Select(u => new WorkspaceMember { UserId = u.Id, WorkspaceId = workspace.Id }).ToList();
        context.Members.AddRange(members);
        await context.SaveChangesAsync();

        var invariant = CultureInfo.InvariantCulture;
        return (
            [.. apps.Select(a => a.Id.ToString("D")), .. numbered.Select(n => n.Id.ToString(invariant))],
            [.. members.Select(m => (m.UserId.ToString(invariant), m.WorkspaceId.ToString(invariant))), .. teams.Select(t => (t.UserId.ToString("D"), t.TeamId))]);
    }

    // Without the interceptor: the rows that exist before the library was adopted.
    private TestDbContext PlainContext()
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        harness.Database.Configure(builder);
        return new TestDbContext(builder.Options);
    }

    private TestDbContext BackfillContext(IInterceptor interceptor)
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        harness.Database.Configure(builder);
        return new TestDbContext(builder.AddThrivestackIdentifyInterceptor().AddInterceptors(interceptor).Options);
    }

    /// <summary>A chunk's keyset read of users or memberships (its raw SQL, inside EF's query).</summary>
    private static bool IsChunkRead(DbCommand command) => command.CommandText.Contains("SELECT * FROM \"", StringComparison.Ordinal);

    /// <summary>Notes whether each chunk read ran inside the chunk's transaction, that is under its write lock.</summary>
    private sealed class ChunkReads : DbCommandInterceptor
    {
        public List<string> InTransaction { get; } = [];

        public List<string> OutsideTransaction { get; } = [];

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            if (IsChunkRead(command))
            {
                (command.Transaction is null ? OutsideTransaction : InTransaction).Add(command.CommandText);
            }

            return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
        }
    }

    /// <summary>
    /// Right after the chunk's first read of numbered users, another connection edits one of them. When the read ran
    /// outside the chunk's transaction nothing holds the edit back, so the chunk waits until the edit has committed and
    /// reached the stand-in: a chunk that kept what it read would then write, and deliver last, its older copy of the user.
    /// When the read ran under the chunk's lock the edit cannot commit before the chunk does, and the chunk goes on at once.
    /// </summary>
    private sealed class EditRightAfterRead(DispatchHarness harness, int userId) : DbCommandInterceptor
    {
        public const string Email = "edited@example.com";

        public Task? Saved { get; private set; }

        public override async ValueTask<DbDataReader> ReaderExecutedAsync(
            DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken cancellationToken = default)
        {
            if (Saved is null && command.CommandText.Contains("SELECT * FROM \"NumberedUsers\"", StringComparison.Ordinal))
            {
                Saved = Task.Run(async () =>
                {
                    await using var context = harness.Database.CreateContext();
                    var user = await context.NumberedUsers.SingleAsync(u => u.Id == userId);
                    user.Email = Email;
                    await context.SaveChangesAsync();
                });
                if (command.Transaction is null)
                {
                    // Delivered, not only committed: both pending in one claim, the live edit would win over the copy anyway.
                    var id = userId.ToString(CultureInfo.InvariantCulture);
                    await Saved.WaitAsync(Deadline, cancellationToken);
                    await harness.StandIn.WaitUntilAsync(s => s.EventsFor(id).Any(e => e.Traits?.GetProperty("email").GetString() == Email), Deadline, cancellationToken);
                }
            }

            return result;
        }
    }
}
