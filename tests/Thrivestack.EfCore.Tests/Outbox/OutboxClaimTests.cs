using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Outbox;

/// <summary>
/// The claim statement of each provider, driven directly: whole users in outbox order, a user whose older row is
/// leased elsewhere or waiting for a retry is skipped, released and expired rows come back at once.
/// Run on PostgreSQL and on the portable claim (PortableOutboxClaimTests, SQLite told to use it); SQLite's own claim reads
/// under an outbox-wide lease (SqliteReadClaimTests).
/// </summary>
public abstract class OutboxClaimTests : IAsyncLifetime
{
    private static readonly DateTime Now = new(2026, 11, 28, 9, 30, 0, DateTimeKind.Utc);
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RetryMaxDelay = TimeSpan.FromMinutes(5);

    private TestDatabase database = null!;

    public async Task InitializeAsync()
    {
        database = await CreateDatabaseAsync();
        await database.CreateSchemaAsync();
    }

    public async Task DisposeAsync() => await database.DisposeAsync();

    protected abstract Task<TestDatabase> CreateDatabaseAsync();

    [Fact]
    public async Task Claim_NothingBlocked_TakesRowsInOutboxOrder()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();

        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now));
        Assert.Empty(await ClaimAsync(Now));
    }

    [Fact]
    public async Task Claim_OlderRowLeasedElsewhere_SkipsTheNewerRowsOfThatUser()
    {
        var (ada1, _, bob) = await EnqueueAsync();

        Assert.Equal([ada1], await ClaimAsync(Now, limit: 1));
        Assert.Equal([bob], await ClaimAsync(Now));
    }

    [Fact]
    public async Task Claim_LeaseRanOut_RowsAreClaimedAgainInOrder()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        Assert.Equal([ada1], await ClaimAsync(Now, limit: 1));

        Assert.Equal([bob], await ClaimAsync(Now + Lease - TimeSpan.FromSeconds(1)));
        Assert.Equal([ada1, ada2], await ClaimAsync(Now + Lease + TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task Release_RowsAreClaimableAtOnce()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        var lease = Guid.NewGuid();
        Assert.Equal([ada1], await ClaimAsync(Now, limit: 1, lease));

        await using (var context = database.CreateContext())
        {
            Assert.Equal(1, await new OutboxStore(context).ReleaseAsync([ada1], lease, CancellationToken.None));
        }

        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now));
    }

    [Fact]
    public async Task Claim_OlderRowWaitingForRetry_HoldsBackTheUserUntilItsTime()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        var lease = Guid.NewGuid();
        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now, limit: 10, lease));
        await using (var context = database.CreateContext())
        {
            var store = new OutboxStore(context);
            await store.RetryLaterAsync([ada1], lease, Now + TimeSpan.FromMinutes(1), "503", CancellationToken.None);
            await store.ReleaseAsync([ada2, bob], lease, CancellationToken.None);
        }

        Assert.Equal([bob], await ClaimAsync(Now + TimeSpan.FromSeconds(1)));
        Assert.Empty(await ClaimAsync(Now + TimeSpan.FromSeconds(2)));

        // Two minutes on: the retry is due and bob's lease (never acknowledged) has run out.
        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now + TimeSpan.FromMinutes(2)));
    }

    [Fact]
    public async Task Claim_MiddleRowWaitingForRetry_HoldsBackTheUsersNewerRows()
    {
        // ada's oldest row is due, her next one waits for its retry, her newest is due: only the oldest may go, or the newest
        // would overtake the one waiting (rows of one user can carry different retry times, e.g. after an out-of-order commit).
        var (ada1, ada2, bob) = await EnqueueAsync();
        long ada3;
        await using (var context = database.CreateContext())
        {
            context.EnqueueThrivestackIdentify("ada", new Dictionary<string, object?> { ["email"] = "ada@example.net" });
            await context.SaveChangesAsync();
            await context.Set<OutboxMessage>().Where(r => r.Id > bob).ExecuteUpdateAsync(s => s.SetProperty(r => r.NextAttemptAt, Now - TimeSpan.FromMinutes(1)));
            ada3 = await context.Set<OutboxMessage>().Where(r => r.Id > bob).Select(r => r.Id).SingleAsync();
        }

        var lease = Guid.NewGuid();
        Assert.Equal([ada1, ada2, bob, ada3], await ClaimAsync(Now, limit: 10, lease));
        await using (var context = database.CreateContext())
        {
            var store = new OutboxStore(context);
            await store.RetryLaterAsync([ada2], lease, Now + TimeSpan.FromMinutes(1), "503", CancellationToken.None);
            await store.ReleaseAsync([ada1, bob, ada3], lease, CancellationToken.None);
        }

        Assert.Equal([ada1, bob], await ClaimAsync(Now + TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task Claim_LeaseEndingFurtherAheadThanALeaseCanAfterTheClockSteppedBack_IsTreatedAsExpired()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        var clockAhead = Now + TimeSpan.FromHours(1);
        Assert.Equal([ada1, ada2, bob], await ClaimAsync(clockAhead));

        // The wall clock stepped back an hour: the lease still has an hour to run, which no lease written now could.
        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now));
    }

    [Fact]
    public async Task Claim_NextAttemptFurtherAheadThanRetryMaxDelayAfterTheClockSteppedBack_IsDue()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        var lease = Guid.NewGuid();
        var clockAhead = Now + TimeSpan.FromHours(1);
        Assert.Equal([ada1, ada2, bob], await ClaimAsync(clockAhead, limit: 10, lease));
        await using (var context = database.CreateContext())
        {
            var store = new OutboxStore(context);
            await store.RetryLaterAsync([ada1, ada2, bob], lease, clockAhead + RetryMaxDelay, "503", CancellationToken.None);
        }

        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now));
    }

    [Fact]
    public async Task Claim_NextAttemptWithinRetryMaxDelay_WaitsForIt()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        var lease = Guid.NewGuid();
        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now, limit: 10, lease));
        await using (var context = database.CreateContext())
        {
            await new OutboxStore(context).RetryLaterAsync([ada1, ada2, bob], lease, Now + RetryMaxDelay, "503", CancellationToken.None);
        }

        Assert.Empty(await ClaimAsync(Now + TimeSpan.FromSeconds(1)));
        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now + RetryMaxDelay));
    }

    private Task<(long Ada1, long Ada2, long Bob)> EnqueueAsync() => OutboxReader.EnqueueAdaAdaBobAsync(database, Now);

    private async Task<long[]> ClaimAsync(DateTime now, int limit = 10, Guid? lease = null)
    {
        await using var context = database.CreateContext();
        var rows = await new OutboxStore(context).ClaimAsync(lease ?? Guid.NewGuid(), "test", now, now + Lease, limit, CancellationToken.None, RetryMaxDelay);
        return [.. rows.Select(r => r.Id)];
    }
}
