using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Outbox;

/// <summary>The public read of the outbox's state and the explicit purge and requeue of dead letters.</summary>
public sealed class OutboxStateTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 11, 30, 8, 0, 0, TimeSpan.Zero);

    private readonly FakeTimeProvider clock = new(Start);
    private readonly SqliteTestDatabase database = new();

    public Task InitializeAsync() => database.CreateSchemaAsync();

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task GetThrivestackOutboxStateAsync_EmptyOutbox_IsAllZero()
    {
        await using var context = database.CreateContext(clock);

        var state = await context.GetThrivestackOutboxStateAsync();

        Assert.Equal((0L, 0L, 0L, TimeSpan.Zero), (state.Pending, state.Delivered, state.DeadLettered, state.OldestPendingAge));
    }

    [Fact]
    public async Task GetThrivestackOutboxStateAsync_RowsInEachState_CountsThemAndAgesTheOldestPending()
    {
        await EnqueueAsync("a", "b", "c", "d", "e");
        clock.Advance(TimeSpan.FromMinutes(1));
        await EnqueueAsync("f");
        await SetStateAsync(["a"], OutboxRowState.Delivered);
        await SetStateAsync(["b", "c"], OutboxRowState.DeadLettered);
        clock.Advance(TimeSpan.FromMinutes(2));
        await using var context = database.CreateContext(clock);

        var state = await context.GetThrivestackOutboxStateAsync();

        Assert.Equal(3, state.Pending);
        Assert.Equal(1, state.Delivered);
        Assert.Equal(2, state.DeadLettered);
        Assert.Equal(TimeSpan.FromMinutes(3), state.OldestPendingAge);
    }

    [Fact]
    public async Task PurgeAndRequeue_GivenIds_TouchOnlyThoseDeadLetters()
    {
        await EnqueueAsync("a", "b", "c", "d");
        await SetStateAsync(["a", "b", "c"], OutboxRowState.DeadLettered);
        await using var context = database.CreateContext(clock);
        var letters = await context.GetThrivestackDeadLettersAsync();
        var pendingId = (await OutboxReader.RowsAsync(database)).Single(r => r.UserId == "d").Id;

        Assert.Equal(1, await context.PurgeThrivestackDeadLettersAsync([letters[0].Id, pendingId]));
        Assert.Equal(1, await context.RequeueThrivestackDeadLettersAsync([letters[1].Id, pendingId]));

        var rows = await OutboxReader.RowsAsync(database);
        Assert.Equal(["b", "c", "d"], rows.Select(r => r.UserId).Order());
        Assert.Equal(OutboxRowState.DeadLettered, rows.Single(r => r.UserId == "c").State);
        Assert.Equal(OutboxRowState.Pending, rows.Single(r => r.UserId == "b").State);
    }

    [Fact]
    public async Task PurgeAllAndRequeueAll_TouchEveryDeadLetterAndNothingElse()
    {
        await EnqueueAsync("a", "b", "c", "d");
        await SetStateAsync(["a", "b"], OutboxRowState.DeadLettered);
        await using var context = database.CreateContext(clock);

        Assert.Equal(2, await context.RequeueAllThrivestackDeadLettersAsync());
        Assert.Equal(4, (await context.GetThrivestackOutboxStateAsync()).Pending);

        await SetStateAsync(["c", "d"], OutboxRowState.DeadLettered);
        Assert.Equal(2, await context.PurgeAllThrivestackDeadLettersAsync());
        Assert.Equal(["a", "b"], (await OutboxReader.RowsAsync(database)).Select(r => r.UserId).Order());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Requeue_LetterThatSpentEveryAttempt_IsPendingWithFreshAttemptsAndDueNow(bool all)
    {
        await EnqueueAsync("spent");
        await SetStateAsync(["spent"], OutboxRowState.DeadLettered);
        await using var context = database.CreateContext(clock);
        await context.Set<OutboxMessage>().ExecuteUpdateAsync(s => s
            .SetProperty(m => m.Attempts, 10)
            .SetProperty(m => m.NextAttemptAt, Start.UtcDateTime.AddHours(1)));
        var letter = Assert.Single(await context.GetThrivestackDeadLettersAsync());
        Assert.Equal(10, letter.Attempts);
        clock.Advance(TimeSpan.FromMinutes(5));

        Assert.Equal(1, all ? await context.RequeueAllThrivestackDeadLettersAsync() : await context.RequeueThrivestackDeadLettersAsync([letter.Id]));

        var row = Assert.Single(await OutboxReader.RowsAsync(database));
        Assert.Equal(OutboxRowState.Pending, row.State);
        Assert.Equal(0, row.Attempts);
        Assert.Equal(clock.GetUtcNow().UtcDateTime, row.NextAttemptAt);
        Assert.Null(row.DeadLetteredAt);
    }

    [Fact]
    public async Task PurgeAndRequeue_NullIds_ThrowInsteadOfMeaningAll()
    {
        await using var context = database.CreateContext(clock);

        await Assert.ThrowsAsync<ArgumentNullException>(() => context.PurgeThrivestackDeadLettersAsync(null!));
        await Assert.ThrowsAsync<ArgumentNullException>(() => context.RequeueThrivestackDeadLettersAsync(null!));
        await Assert.ThrowsAsync<ArgumentNullException>(() => ((DbContext)null!).GetThrivestackOutboxStateAsync());
        await Assert.ThrowsAsync<ArgumentNullException>(() => ((DbContext)null!).PurgeAllThrivestackDeadLettersAsync());
        await Assert.ThrowsAsync<ArgumentNullException>(() => ((DbContext)null!).RequeueAllThrivestackDeadLettersAsync());
    }

    [Fact]
    public async Task OutboxStateAndDeadLetterMethods_OutboxTableNotCreated_ThrowNamingTheTableAndHowToCreateIt()
    {
        await using var context = database.CreateContext(clock);
        await context.Database.ExecuteSqlRawAsync("DROP TABLE thrivestack_outbox");

        var errors = new Dictionary<string, InvalidOperationException>
        {
            ["GetThrivestackOutboxStateAsync"] = await Assert.ThrowsAsync<InvalidOperationException>(() => context.GetThrivestackOutboxStateAsync()),
            ["GetThrivestackDeadLettersAsync"] = await Assert.ThrowsAsync<InvalidOperationException>(() => context.GetThrivestackDeadLettersAsync()),
            ["RequeueThrivestackDeadLettersAsync"] = await Assert.ThrowsAsync<InvalidOperationException>(() => context.RequeueThrivestackDeadLettersAsync([1])),
            ["RequeueAllThrivestackDeadLettersAsync"] = await Assert.ThrowsAsync<InvalidOperationException>(() => context.RequeueAllThrivestackDeadLettersAsync()),
            ["PurgeThrivestackDeadLettersAsync"] = await Assert.ThrowsAsync<InvalidOperationException>(() => context.PurgeThrivestackDeadLettersAsync([1])),
            ["PurgeAllThrivestackDeadLettersAsync"] = await Assert.ThrowsAsync<InvalidOperationException>(() => context.PurgeAllThrivestackDeadLettersAsync()),
        };

        Assert.All(errors, e =>
        {
            Assert.IsAssignableFrom<System.Data.Common.DbException>(e.Value.InnerException);
            Assert.StartsWith("The identify outbox table 'thrivestack_outbox' does not exist in this database. Create it: 'dotnet ef migrations add AddThrivestackOutbox', then 'dotnet ef database update'", e.Value.Message, StringComparison.Ordinal);
            Assert.EndsWith($"Database.EnsureThrivestackOutboxCreated() once at start. {e.Key} needs it.", e.Value.Message, StringComparison.Ordinal);
        });
    }

    private async Task EnqueueAsync(params string[] userIds)
    {
        await using var context = database.CreateContext(clock);
        foreach (var userId in userIds)
        {
            context.EnqueueThrivestackIdentify(userId, null);
        }

        await context.SaveChangesAsync();
    }

    private async Task SetStateAsync(string[] userIds, OutboxRowState state)
    {
        await using var context = database.CreateContext(clock);
        var now = clock.GetUtcNow().UtcDateTime;
        await context.Set<OutboxMessage>().Where(m => userIds.Contains(m.UserId)).ExecuteUpdateAsync(s => s
            .SetProperty(m => m.State, state)
            .SetProperty(m => m.DeliveredAt, state == OutboxRowState.Delivered ? now : null)
            .SetProperty(m => m.DeadLetteredAt, state == OutboxRowState.DeadLettered ? now : null));
    }
}
