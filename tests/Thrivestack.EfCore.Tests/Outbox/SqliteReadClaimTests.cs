using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Outbox;

/// <summary>
/// SQLite's claim, driven directly: one dispatcher holds the outbox-wide lease and claims by reading, whole users in outbox
/// order, skipping users in flight in its own process and users whose older row waits for a retry or is leased by a
/// dispatcher of an earlier version. Acknowledgements hold only while the lease is the dispatcher's.
/// </summary>
public sealed class SqliteReadClaimTests : IAsyncLifetime
{
    private static readonly DateTime Now = new(2026, 11, 28, 9, 30, 0, DateTimeKind.Utc);
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RetryMaxDelay = TimeSpan.FromMinutes(5);
    private static readonly string Us = $"{Environment.MachineName}:{Environment.ProcessId}:us";

    private readonly SqliteTestDatabase database = new();

    public async Task InitializeAsync() => await database.CreateSchemaAsync();

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task Claim_NothingInFlight_TakesRowsInOutboxOrderAndWritesNothing()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        var before = await OutboxReader.RowsAsync(database);

        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now));

        // Nothing was written: the rows are as they were, and the same read finds them again.
        Assert.Equivalent(before, await OutboxReader.RowsAsync(database), strict: true);
        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now));
    }

    [Fact]
    public async Task Claim_UserInFlightHere_SkipsAllItsRows()
    {
        var (_, _, bob) = await EnqueueAsync();

        Assert.Equal([bob], await ClaimAsync(Now, inFlight: ["ada"]));
        Assert.Empty(await ClaimAsync(Now, inFlight: ["ada", "bob"]));
    }

    [Fact]
    public async Task Claim_UsersInFlightWhoseIdsNeedJsonEscaping_SkipsExactlyThoseUsers()
    {
        // The users in flight reach SQLite as a JSON array read by json_each: every id must come back as it was written.
        string[] awkward = ["quote\"d", "back\\slash", "line\nbreak", "tab\there", "\u0001control", "ünïcödé", "emoji 🚀", "<html>&'", "ada"];
        await using (var context = database.CreateContext())
        {
            foreach (var user in awkward.Append("plain"))
            {
                context.EnqueueThrivestackIdentify(user, new Dictionary<string, object?> { ["email"] = "x@example.com" });
            }

            await context.SaveChangesAsync();
            await context.Set<OutboxMessage>().ExecuteUpdateAsync(s => s.SetProperty(r => r.NextAttemptAt, Now - TimeSpan.FromMinutes(1)));
        }

        var rows = await OutboxReader.RowsAsync(database);

        Assert.Equal([rows.Single(r => r.UserId == "plain").Id], await ClaimAsync(Now, inFlight: awkward));
        Assert.Equal(rows.Select(r => r.Id), await ClaimAsync(Now, inFlight: ["quote", "back\\\\slash", "ünïcöde"]));
    }

    [Fact]
    public async Task Claim_LimitCutsAUser_TakesItsOldestRowsFirst()
    {
        var (ada1, _, _) = await EnqueueAsync();

        Assert.Equal([ada1], await ClaimAsync(Now, limit: 1));
    }

    [Fact]
    public async Task Claim_OlderRowWaitingForRetry_HoldsBackTheUserUntilItsTime()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        await using (var context = database.CreateContext())
        {
            var store = new OutboxStore(context, Us);
            Assert.True(await store.HoldLeaseAsync(Now, Now + Lease, CancellationToken.None));
            Assert.Equal(1, await store.RetryLaterAsync([ada1], Guid.Empty, Now + TimeSpan.FromMinutes(1), "503", CancellationToken.None));
        }

        Assert.Equal([bob], await ClaimAsync(Now + TimeSpan.FromSeconds(1)));
        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now + TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public async Task Claim_OlderRowLeasedByADispatcherOfAnEarlierVersion_SkipsTheUserUntilThatLeaseEnds()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        await using (var context = database.CreateContext())
        {
            await context.Set<OutboxMessage>().Where(m => m.Id == ada1).ExecuteUpdateAsync(s => s
                .SetProperty(m => m.LeaseId, Guid.NewGuid()).SetProperty(m => m.LeaseOwner, "old").SetProperty(m => m.LeaseExpiresAt, Now + Lease));
        }

        Assert.Equal([bob], await ClaimAsync(Now));
        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now + Lease));
    }

    [Fact]
    public async Task Claim_NextAttemptFurtherAheadThanRetryMaxDelayAfterTheClockSteppedBack_IsDue()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        var clockAhead = Now + TimeSpan.FromHours(1);
        await using (var context = database.CreateContext())
        {
            var store = new OutboxStore(context, Us);
            Assert.True(await store.HoldLeaseAsync(Now, Now + Lease, CancellationToken.None));
            await store.RetryLaterAsync([ada1, ada2, bob], Guid.Empty, clockAhead + RetryMaxDelay, "503", CancellationToken.None);
        }

        Assert.Equal([ada1, ada2, bob], await ClaimAsync(Now));
    }

    [Fact]
    public async Task HoldLease_HeldByAnother_RefusedUntilItEndsOrIsGivenBack()
    {
        const string other = "elsewhere:1:other";
        Assert.True(await HoldAsync(other, Now));
        Assert.True(await HoldAsync(other, Now + TimeSpan.FromSeconds(10)));

        Assert.False(await HoldAsync(Us, Now + TimeSpan.FromSeconds(20)));
        Assert.True(await HoldAsync(Us, Now + TimeSpan.FromSeconds(10) + Lease));
        Assert.False(await HoldAsync(other, Now + TimeSpan.FromSeconds(11) + Lease));

        await using (var context = database.CreateContext())
        {
            Assert.Equal("thrivestack_outbox", await new OutboxStore(context, Us).ReleaseLeaseAsync(Now, CancellationToken.None));
        }

        Assert.True(await HoldAsync(other, Now + TimeSpan.FromSeconds(12) + Lease));
    }

    [Fact]
    public async Task HoldLease_HolderEndsFurtherAheadThanALeaseCan_IsTreatedAsExpired()
    {
        const string other = "elsewhere:1:other";
        Assert.True(await HoldAsync(other, Now + TimeSpan.FromHours(1)));

        // The wall clock stepped back an hour: no lease written now could still have an hour to run.
        Assert.True(await HoldAsync(Us, Now));
    }

    [Fact]
    public async Task HoldLease_HolderIsAProcessOfThisMachineThatNoLongerRuns_TakenOverOnceItMissedHalfALeaseOfRenewals()
    {
        var dead = $"{Environment.MachineName}:{await ExitedProcessIdAsync()}:dead";
        Assert.True(await HoldAsync(dead, Now));

        // A process id can look gone while its process runs elsewhere (another PID namespace): renewals decide.
        Assert.False(await HoldAsync(Us, Now + TimeSpan.FromSeconds(1)));
        Assert.True(await HoldAsync(Us, Now + (Lease / 2)));
    }

    [Fact]
    public async Task Claim_LeaseTakenByAnother_ClaimsNothing()
    {
        await EnqueueAsync();
        Assert.True(await HoldAsync(Us, Now));
        Assert.True(await HoldAsync("elsewhere:1:other", Now + Lease));

        await using var context = database.CreateContext();
        var now = Now + Lease;
        Assert.Empty(await new OutboxStore(context, Us).ClaimAsync(Guid.NewGuid(), Us, now, now + Lease, 10, CancellationToken.None, RetryMaxDelay, []));
    }

    [Fact]
    public async Task HoldLease_HolderIsAnotherDispatcherOfThisProcess_WaitsForItsEnd()
    {
        var sibling = $"{Environment.MachineName}:{Environment.ProcessId}:sibling";
        Assert.True(await HoldAsync(sibling, Now));

        Assert.False(await HoldAsync(Us, Now + TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task Acknowledge_AnotherTookTheLeaseMeanwhile_ChangesNothing()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        Assert.True(await HoldAsync(Us, Now));
        Assert.True(await HoldAsync("elsewhere:1:other", Now + Lease));

        await using (var context = database.CreateContext())
        {
            var store = new OutboxStore(context, Us);
            Assert.Equal(0, await store.DeliveredAsync([ada1, ada2], Guid.Empty, Now + Lease, keep: false, CancellationToken.None));
            Assert.Equal(0, await store.RetryLaterAsync([bob], Guid.Empty, Now + Lease, "503", CancellationToken.None));
        }

        Assert.All(await OutboxReader.RowsAsync(database), r => Assert.Equal(0, r.Attempts));
        Assert.Equal(3, (await OutboxReader.RowsAsync(database)).Count);
    }

    [Fact]
    public async Task Acknowledge_WhileTheLeaseIsOurs_DeletesTheRows()
    {
        var (ada1, ada2, bob) = await EnqueueAsync();
        Assert.True(await HoldAsync(Us, Now));

        await using (var context = database.CreateContext())
        {
            Assert.Equal(2, await new OutboxStore(context, Us).DeliveredAsync([ada1, ada2], Guid.Empty, Now, keep: false, CancellationToken.None));
        }

        Assert.Equal([bob], (await OutboxReader.RowsAsync(database)).Select(r => r.Id));
    }

    [Theory]
    [InlineData("killed-host")]
    [InlineData("another-machine:1:x")]
    [InlineData("")]
    public void IsGone_NotAProcessOfThisMachine_False(string owner) => Assert.False(LeaseOwner.IsGone(owner));

    [Fact]
    public void IsGone_ThisProcess_False() => Assert.False(LeaseOwner.IsGone(OutboxStore.NewOwner()));

    [Fact]
    public async Task IsGone_ExitedProcessOfThisMachine_True() =>
        Assert.True(LeaseOwner.IsGone($"{Environment.MachineName}:{await ExitedProcessIdAsync()}:x"));

    private static async Task<int> ExitedProcessIdAsync()
    {
        using var process = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        await process.WaitForExitAsync();
        return process.Id;
    }

    private async Task<bool> HoldAsync(string owner, DateTime now)
    {
        await using var context = database.CreateContext();
        return await new OutboxStore(context, owner).HoldLeaseAsync(now, now + Lease, CancellationToken.None);
    }

    private Task<(long Ada1, long Ada2, long Bob)> EnqueueAsync() => OutboxReader.EnqueueAdaAdaBobAsync(database, Now);

    private async Task<long[]> ClaimAsync(DateTime now, int limit = 10, string[]? inFlight = null)
    {
        await using var context = database.CreateContext();
        Assert.True(await new OutboxStore(context, Us).HoldLeaseAsync(now, now + Lease, CancellationToken.None));
        var rows = await new OutboxStore(context, Us).ClaimAsync(Guid.NewGuid(), Us, now, now + Lease, limit, CancellationToken.None, RetryMaxDelay, inFlight ?? []);
        return [.. rows.Select(r => r.Id)];
    }
}
