using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>
/// Ids and trait values the application accepts but ThriveStack or the outbox cannot take: the application's save
/// always succeeds. Run on SQLite here and on PostgreSQL in the integration suite.
/// </summary>
public abstract class IdCaptureTests : IAsyncLifetime
{
    private readonly LogCollector logs = new();
    private readonly ILoggerFactory loggerFactory;

    protected IdCaptureTests()
    {
        loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs));
    }

    protected TestDatabase Database { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Database = await CreateDatabaseAsync();
        await using var context = NewContext();
        await context.Database.EnsureDeletedAsync();
        await context.Database.EnsureCreatedAsync();
    }

    public async Task DisposeAsync()
    {
        await Database.DisposeAsync();
        loggerFactory.Dispose();
    }

    protected abstract Task<TestDatabase> CreateDatabaseAsync();

    [Fact]
    public async Task SaveChanges_UserIdOf300Characters_SavesAndCapturesEvent()
    {
        var id = new string('u', 300);
        await using (var context = NewContext())
        {
            context.Accounts.Add(new Account { Id = id, Email = "long@example.com" });
            await context.SaveChangesAsync();
        }

        var row = Assert.Single(await RowsAsync());
        Assert.Equal(id, row.UserId);
        Assert.Equal(id, OutboxReader.Json(row).GetProperty("user_id").GetString());
        Assert.DoesNotContain(logs.Lines, l => l.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task SaveChanges_UserIdOf5000Characters_SavesUserAndLeavesEventOutWithWarning()
    {
        var id = new string('x', 5000);
        await using (var context = NewContext())
        {
            context.Accounts.Add(new Account { Id = id, Email = "huge@example.com" });
            context.Accounts.Add(new Account { Id = "short", Email = "short@example.com" });
            await context.SaveChangesAsync();
        }

        await using (var context = NewContext())
        {
            Assert.Equal(2, await context.Accounts.CountAsync());
        }

        Assert.Equal("short", Assert.Single(await RowsAsync()).UserId);
        var warning = Assert.Single(logs.Lines, l => IsLibrary(l, 302));
        Assert.Contains("5000 characters", warning.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(id, warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SaveChanges_GroupIdOf5000Characters_SavesMembershipAndLeavesEventOutWithWarning()
    {
        await using (var context = NewContext())
        {
            context.Memberships.Add(new AccountMembership { AccountId = "member", GroupId = new string('g', 5000) });
            await context.SaveChangesAsync();
        }

        await using (var context = NewContext())
        {
            Assert.Equal(1, await context.Memberships.CountAsync());
        }

        Assert.Empty(await RowsAsync());
        Assert.Single(logs.Lines, l => IsLibrary(l, 302));
    }

    [Fact]
    public async Task SaveChanges_IdsAtTheirLimitAndAPayloadPastTheBatchLimit_WritesThemExactly()
    {
        // 1,000 two-byte characters: the longest id the outbox takes, in characters and in UTF-8 bytes at once.
        var userId = new string('é', ThrivestackModelBuilderExtensions.MaxIdLength);
        var groupId = new string('ß', ThrivestackModelBuilderExtensions.MaxIdLength);
        // A trait past 2,000,000 bytes: the row is written whole; the dispatcher dead-letters it, the save never fails.
        var email = new string('ü', 1_100_000) + "@example.com";
        await using (var context = NewContext())
        {
            context.Accounts.Add(new Account { Id = userId, Email = email });
            context.Memberships.Add(new AccountMembership { AccountId = "joiner", GroupId = groupId });
            await context.SaveChangesAsync();
        }

        var rows = await RowsAsync();
        Assert.Equal(2, rows.Count);
        var user = rows.Single(r => r.UserId == userId);
        Assert.Equal(email, OutboxReader.Traits(user).GetProperty("email").GetString());
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(user.Payload), user.PayloadBytes);
        Assert.True(user.PayloadBytes > 2_000_000);
        var member = rows.Single(r => r.UserId == "joiner");
        Assert.Equal(groupId, member.GroupId);
        Assert.Equal(groupId, OutboxReader.Json(member).GetProperty("context").GetProperty("group_id").GetString());
        Assert.DoesNotContain(logs.Lines, l => l.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task SaveChanges_IdsOfAThousandThreeByteCharacters_SavesAndLeavesTheirEventsOutWithWarnings()
    {
        // Within the character limit, but 3,000 UTF-8 bytes: past what an index entry takes on PostgreSQL (about 2,700),
        // where the outbox row would fail the application's save. The byte count decides.
        var userId = new string('日', ThrivestackModelBuilderExtensions.MaxIdLength);
        var groupId = new string('語', ThrivestackModelBuilderExtensions.MaxIdLength);
        await using (var context = NewContext())
        {
            context.Accounts.Add(new Account { Id = userId, Email = "cjk@example.com" });
            context.Memberships.Add(new AccountMembership { AccountId = "joiner", GroupId = groupId });
            context.Accounts.Add(new Account { Id = "short", Email = "short@example.com" });
            await context.SaveChangesAsync();
        }

        await using (var context = NewContext())
        {
            Assert.Equal(2, await context.Accounts.CountAsync());
            Assert.Equal(1, await context.Memberships.CountAsync());
        }

        Assert.Equal("short", Assert.Single(await RowsAsync()).UserId);
        Assert.Equal(2, logs.Lines.Count(l => IsLibrary(l, 302)));
    }

    [Fact]
    public async Task SaveChanges_NonFiniteNumberTraits_LeavesThemOutLikeNull()
    {
        await using (var context = NewContext())
        {
            // SQLite cannot store NaN; IdentifyEventWriterTests covers it.
            context.Accounts.Add(new Account { Id = "nan", Email = "nan@example.com", Score = double.NegativeInfinity, Rating = float.PositiveInfinity });
            context.Accounts.Add(new Account { Id = "finite", Email = "finite@example.com", Score = 2.5, Rating = 4 });
            await context.SaveChangesAsync();
        }

        var rows = await RowsAsync();
        var nan = OutboxReader.Traits(rows.Single(r => r.UserId == "nan"));
        Assert.Equal("nan@example.com", nan.GetProperty("email").GetString());
        Assert.False(nan.TryGetProperty("score", out _), "-Infinity is left out");
        Assert.False(nan.TryGetProperty("rating", out _), "Infinity is left out");
        var finite = OutboxReader.Traits(rows.Single(r => r.UserId == "finite"));
        Assert.Equal(2.5, finite.GetProperty("score").GetDouble());
        Assert.Equal(4, finite.GetProperty("rating").GetDouble());
    }

    [Fact]
    public async Task SaveChanges_EmptyUserId_SavesWithoutEventAndWarns()
    {
        await using (var context = NewContext())
        {
            context.Accounts.Add(new Account { Id = "", Email = "nobody@example.com" });
            await context.SaveChangesAsync();
        }

        Assert.Empty(await RowsAsync());
        var warning = Assert.Single(logs.Lines, l => IsLibrary(l, 303));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains(nameof(Account), warning.Message, StringComparison.Ordinal);
    }

    protected AccountDbContext NewContext()
    {
        var builder = new DbContextOptionsBuilder<AccountDbContext>();
        Database.Configure(builder);
        builder.UseLoggerFactory(loggerFactory).AddThrivestackIdentifyInterceptor();
        return new AccountDbContext(builder.Options);
    }

    private async Task<List<OutboxMessage>> RowsAsync()
    {
        await using var context = NewContext();
        return await context.Set<OutboxMessage>().AsNoTracking().OrderBy(m => m.Id).ToListAsync();
    }

    private static bool IsLibrary(LogCollector.LogLine line, int eventId) =>
        line.EventId.Id == eventId && line.Category.StartsWith("Thrivestack.EfCore.", StringComparison.Ordinal);
}
