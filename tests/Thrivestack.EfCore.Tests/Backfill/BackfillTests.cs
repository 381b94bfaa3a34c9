using System.Data.Common;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Backfill;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Backfill;

/// <summary>
/// The backfill of existing users and memberships, written once and run on every provider (SQLite here,
/// PostgreSQL in the integration suite), against the dispatcher and the stand-in.
/// </summary>
public abstract class BackfillTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    /// <summary>
    /// Whether a chunk reads its users before it takes its lock (SQLite: an edit can commit, and be delivered, between the
    /// read and the insert), or under it (PostgreSQL: an edit during the read waits for the chunk).
    /// </summary>
    protected virtual bool ChunkReadsBeforeItsLock => false;

    public async Task InitializeAsync()
    {
        harness = await DispatchHarness.StartAsync(await CreateDatabaseAsync());
        await using var context = PlainContext();
        await context.Database.EnsureDeletedAsync();
        await context.Database.EnsureCreatedAsync();
        if (context.Database.IsSqlite())
        {
            // The file was created again: back to the journal mode the README recommends, where readers never block writers.
            await context.Database.ExecuteSqlRawAsync("PRAGMA journal_mode = WAL;");
        }
    }

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task BackfillThrivestackAsync_ExistingUsersAndMemberships_EveryOneArrivesExactlyOnce()
    {
        var seed = await SeedAsync(appUsers: 7, numberedUsers: 12, guests: 4, teamMembers: 5);
        var host = BuildHost();
        using var meters = new MeterRecorder(host.Services.GetRequiredService<IMeterFactory>());
        await host.StartAsync();
        var reports = new List<ThrivestackBackfillProgress>();

        ThrivestackBackfillResult result;
        await using (var scope = host.Services.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<BackfillDbContext>();
            result = await context.BackfillThrivestackAsync(new ThrivestackBackfillOptions { ChunkSize = 3 }, new SyncProgress(reports.Add));
        }

        Assert.True(result.Completed);
        Assert.False(result.ResumedFromCheckpoint);
        Assert.Equal(seed.UserIds.Count, result.UsersEnqueued);
        Assert.Equal(seed.Memberships.Count, result.MembershipsEnqueued);
        Assert.Equal(seed.UserIds.Count, reports[^1].ProcessedUsers);
        Assert.Equal(seed.Memberships.Count, reports[^1].ProcessedMemberships);
        Assert.Equal(seed.UserIds.Count + seed.Memberships.Count, reports[^1].EstimatedTotal);
        Assert.Equal(seed.UserIds.Count + seed.Memberships.Count, meters.Sum("thrivestack.backfill.enqueued"));

        await WaitDeliveredAsync(seed.UserIds.Count + seed.Memberships.Count);
        AssertArrivedOnce(seed);
        var ada = Assert.Single(harness.StandIn.EventsFor(seed.FirstAppUser)).Traits!.Value;
        Assert.Equal("app0@example.com", ada.GetProperty("email").GetString());
        Assert.Equal("City0", ada.GetProperty(ThrivestackTraits.City).GetString());
        Assert.Equal("pro", ada.GetProperty("plan").GetString());
        Assert.Equal(20, ada.GetProperty("age").GetInt32());
        var guest = Assert.Single(harness.StandIn.EventsFor(seed.GuestWithoutTraits));
        Assert.True(guest.Traits is null || !guest.Traits.Value.EnumerateObject().Any());
    }

    [Fact]
    public async Task BackfillThrivestackAsync_RunAfterCompletion_EnqueuesNothingUnlessRestarted()
    {
        var seed = await SeedAsync(appUsers: 3, numberedUsers: 4, guests: 1, teamMembers: 2);
        var all = seed.UserIds.Count + seed.Memberships.Count;
        var first = await RunAsync(new ThrivestackBackfillOptions { ChunkSize = 2 });

        var second = await RunAsync(new ThrivestackBackfillOptions { ChunkSize = 2 });
        var afterSecond = await harness.RowsAsync();
        var restarted = await RunAsync(new ThrivestackBackfillOptions { ChunkSize = 2, Restart = true });

        Assert.Equal(all, first.UsersEnqueued + first.MembershipsEnqueued);
        Assert.True(second.Completed);
        Assert.True(second.ResumedFromCheckpoint);
        Assert.Equal(0, second.UsersEnqueued + second.MembershipsEnqueued);
        Assert.Equal(all, afterSecond.Count);
        Assert.Equal(all, restarted.UsersEnqueued + restarted.MembershipsEnqueued);
        Assert.Equal(2 * all, (await harness.RowsAsync()).Count);
    }

    [Fact]
    public async Task BackfillThrivestackAsync_CanceledAndRunAgain_EnqueuesEveryRowOnce()
    {
        var seed = await SeedAsync(appUsers: 5, numberedUsers: 6, guests: 2, teamMembers: 3);
        using var cancel = new CancellationTokenSource();
        ThrivestackBackfillProgress? last = null;
        var chunks = 0;
        var progress = new SyncProgress(p =>
        {
            last = p;
            if (++chunks == 4)
            {
                cancel.Cancel();
            }
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RunAsync(new ThrivestackBackfillOptions { ChunkSize = 2 }, progress, cancel.Token));
        Assert.Equal(last!.ProcessedUsers + last.ProcessedMemberships, (await harness.RowsAsync()).Count);
        var resumed = await RunAsync(new ThrivestackBackfillOptions { ChunkSize = 2 });

        Assert.True(resumed.Completed);
        Assert.True(resumed.ResumedFromCheckpoint);
        AssertOutboxHoldsEachOnce(seed, await harness.RowsAsync());
    }

    [Fact]
    public async Task BackfillThrivestackAsync_FailureInsideChunk_RollsTheChunkBackAndTheNextRunEnqueuesEachOnce()
    {
        var seed = await SeedAsync(appUsers: 4, numberedUsers: 5, guests: 1, teamMembers: 2);
        var failing = new FailCheckpointUpdate(failAt: 3);
        ThrivestackBackfillProgress? last = null;

        var failure = await Assert.ThrowsAnyAsync<DbException>(() => RunWithAsync(failing, new ThrivestackBackfillOptions { ChunkSize = 2 }, new SyncProgress(p => last = p)));
        Assert.Contains("injected", failure.Message, StringComparison.Ordinal);
        Assert.Equal(last!.ProcessedUsers + last.ProcessedMemberships, (await harness.RowsAsync()).Count);
        var resumed = await RunAsync(new ThrivestackBackfillOptions { ChunkSize = 2 });

        Assert.True(resumed.ResumedFromCheckpoint);
        AssertOutboxHoldsEachOnce(seed, await harness.RowsAsync());
    }

    [Fact]
    public async Task BackfillThrivestackAsync_LockLeftByKilledProcess_RefusesUntilItExpiresThenContinues()
    {
        var seed = await SeedAsync(appUsers: 3, numberedUsers: 5, guests: 1, teamMembers: 1);
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        using var cancel = new CancellationTokenSource();
        var chunks = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RunAsync(
            new ThrivestackBackfillOptions { ChunkSize = 2 },
            new SyncProgress(_ =>
            {
                if (++chunks == 2)
                {
                    cancel.Cancel();
                }
            }),
            cancel.Token,
            clock));
        await using (var context = PlainContext())
        {
            await context.Set<BackfillCheckpoint>().Where(c => c.Entity == BackfillCheckpoint.RunEntity).ExecuteUpdateAsync(s => s
                .SetProperty(c => c.LockOwner, "killed-host/42")
                .SetProperty(c => c.LockExpiresAt, clock.GetUtcNow().UtcDateTime.AddMinutes(1)));
        }

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => RunAsync(new ThrivestackBackfillOptions { ChunkSize = 2 }, time: clock));
        clock.Advance(TimeSpan.FromMinutes(2));
        var resumed = await RunAsync(new ThrivestackBackfillOptions { ChunkSize = 2 }, time: clock);

        Assert.Contains("already running (owner killed-host/42", refused.Message, StringComparison.Ordinal);
        Assert.True(resumed.Completed);
        AssertOutboxHoldsEachOnce(seed, await harness.RowsAsync());
    }

    [Fact]
    public async Task BackfillThrivestackAsync_TwoRunsAtOnce_SecondRefusesAndWorkIsNotDoubled()
    {
        var seed = await SeedAsync(appUsers: 3, numberedUsers: 4, guests: 1, teamMembers: 2);
        var firstChunk = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new ManualResetEventSlim();
        var running = Task.Run(() => RunAsync(
            new ThrivestackBackfillOptions { ChunkSize = 2 },
            new SyncProgress(_ =>
            {
                firstChunk.TrySetResult();
                release.Wait(Deadline);
            })));
        await firstChunk.Task.WaitAsync(Deadline);

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => RunAsync(new ThrivestackBackfillOptions { ChunkSize = 2 }));
        release.Set();
        var result = await running.WaitAsync(Deadline);

        Assert.Contains("already running", refused.Message, StringComparison.Ordinal);
        Assert.True(result.Completed);
        AssertOutboxHoldsEachOnce(seed, await harness.RowsAsync());
    }

    [Fact]
    public async Task BackfillThrivestackAsync_UsersEditedMeanwhile_LastTraitsAtStandInEqualTheRows()
    {
        var seed = await SeedAsync(appUsers: 0, numberedUsers: 24, guests: 0, teamMembers: 0);
        await harness.StartHostAsync();
        var edits = new EditInEveryChunk(harness, seed.NumberedIds, ChunkReadsBeforeItsLock);

        var result = await RunWithAsync(edits, new ThrivestackBackfillOptions { ChunkSize = 3 }, new SyncProgress(_ => { }));
        await edits.AllSavedAsync().WaitAsync(Deadline);

        // Eight chunks of three users, each with one of its users edited while it was read.
        Assert.True(result.Completed);
        Assert.Equal(8, edits.Edited.Count);
        await harness.WaitForOutboxAsync(rows => rows.All(r => r.State != OutboxRowState.Pending), Deadline);
        await using var check = PlainContext();
        foreach (var user in await check.NumberedUsers.AsNoTracking().ToListAsync())
        {
            var received = harness.StandIn.EventsFor(user.Id.ToString(CultureInfo.InvariantCulture)).Where(e => e.GroupId is null).ToList();
            Assert.NotEmpty(received);
            Assert.Equal(user.Email, received[^1].Traits!.Value.GetProperty("email").GetString());
        }

        Assert.All(edits.Edited, id => Assert.StartsWith(
            "edited-",
            harness.StandIn.EventsFor(id.ToString(CultureInfo.InvariantCulture)).Last(e => e.GroupId is null).Traits!.Value.GetProperty("email").GetString(),
            StringComparison.Ordinal));
    }

    [Fact]
    public async Task BackfillThrivestackAsync_EditCommittingRightAfterTheChunkRead_NeverLeavesStaleTraits()
    {
        var seed = await SeedAsync(appUsers: 0, numberedUsers: 4, guests: 0, teamMembers: 0);
        await harness.StartHostAsync();
        var target = seed.NumberedIds[0];
        var targetId = target.ToString(CultureInfo.InvariantCulture);
        var edit = new EditAfterRead(harness, target);

        var result = await RunWithAsync(edit, new ThrivestackBackfillOptions { ChunkSize = 10 }, new SyncProgress(_ => { }));
        await edit.Saved!.WaitAsync(Deadline);

        Assert.True(result.Completed);
        await AssertLastEmailAsync(targetId, "edited@example.com");
    }

    [Fact]
    public async Task BackfillThrivestackAsync_AppTransactionWroteItsEventBeforeTheUserRow_NeverLeavesStaleTraits()
    {
        var seed = await SeedAsync(appUsers: 0, numberedUsers: 4, guests: 0, teamMembers: 0);
        await harness.StartHostAsync();
        var target = seed.NumberedIds[1];
        var targetId = target.ToString(CultureInfo.InvariantCulture);
        var app = new AppTransactionAroundRead(harness, target);

        var result = await RunWithAsync(app, new ThrivestackBackfillOptions { ChunkSize = 10 }, new SyncProgress(_ => { }));
        await app.Finished!.WaitAsync(Deadline);

        Assert.True(result.Completed);
        await AssertLastEmailAsync(targetId, "edited@example.com");
    }

    /// <summary>
    /// Under a TransactionScope the event rides in EF's own batch with the user's row, and commits when the scope does
    /// (providers that enlist in ambient transactions run it; SQLite does not).
    /// </summary>
    protected async Task EditSavedInAmbientTransactionAroundTheChunkReadAsync()
    {
        var seed = await SeedAsync(appUsers: 0, numberedUsers: 4, guests: 0, teamMembers: 0);
        await harness.StartHostAsync();
        var target = seed.NumberedIds[2];
        var app = new AmbientSaveAroundRead(harness, target);

        var result = await RunWithAsync(app, new ThrivestackBackfillOptions { ChunkSize = 10 }, new SyncProgress(_ => { }));
        await app.Finished!.WaitAsync(Deadline);

        Assert.True(result.Completed);
        await AssertLastEmailAsync(target.ToString(CultureInfo.InvariantCulture), "edited@example.com");
    }

    [Fact]
    public async Task BackfillThrivestackAsync_BacklogAboveLimit_WaitsForDeliveryBeforeTheNextChunk()
    {
        var seed = await SeedAsync(appUsers: 0, numberedUsers: 40, guests: 0, teamMembers: 0);
        var host = BuildHost();
        var highest = 0;
        var options = new ThrivestackBackfillOptions { ChunkSize = 5, MaxPendingEvents = 10, PollInterval = TimeSpan.FromMilliseconds(20) };
        var running = Task.Run(async () =>
        {
            await using var scope = host.Services.CreateAsyncScope();
            var context = scope.ServiceProvider.GetRequiredService<BackfillDbContext>();
            return await context.BackfillThrivestackAsync(options, new SyncProgress(_ => highest = Math.Max(highest, PendingCount())));
        });

        await WaitUntilAsync(() => harness.Logs.Lines.Any(l => l.EventId.Id == 903));
        var pendingWhileWaiting = PendingCount();
        Assert.False(running.IsCompleted);
        await host.StartAsync();
        var result = await running.WaitAsync(Deadline);

        Assert.InRange(pendingWhileWaiting, 11, 15);
        Assert.InRange(highest, 1, 15);
        Assert.True(result.Completed);
        await WaitDeliveredAsync(seed.UserIds.Count);
        AssertArrivedOnce(seed);
    }

    [Fact]
    public async Task BackfillThrivestackAsync_BacklogAboveLimit_ContinuesSoonAfterDeliveryDrainsItNotAfterPollInterval()
    {
        var seed = await SeedAsync(appUsers: 0, numberedUsers: 40, guests: 0, teamMembers: 0);
        var clock = new WatchedClock(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var host = BuildHost();
        var options = new ThrivestackBackfillOptions { ChunkSize = 5, MaxPendingEvents = 10, PollInterval = TimeSpan.FromHours(1) };
        var running = RunAsync(options, time: clock);
        await WaitUntilAsync(() => PendingCount() > options.MaxPendingEvents);
        await host.StartAsync();

        // The clock moves only while nothing is pending, by the wait the backfill is parked on: a backfill that slept a
        // whole PollInterval would need an hour of it. Looked at again after each wait it starts and each database step.
        var moved = TimeSpan.Zero;
        var advancedAt = 0;
        var deadline = DateTime.UtcNow + Deadline;
        while (!running.IsCompleted)
        {
            var activity = harness.Database.Activity.Next;
            var (started, due, nextStart) = clock.LatestWait();
            if (started > advancedAt && PendingCount() == 0)
            {
                advancedAt = started;
                clock.Advance(due);
                moved += due;
                continue;
            }

            var left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, $"The backfill did not continue; the clock moved {moved} while the outbox was drained.");
            await Task.WhenAny(running, activity, nextStart, Task.Delay(left));
        }

        var result = await running;
        Assert.True(result.Completed);
        Assert.True(moved < TimeSpan.FromMinutes(1), $"The clock moved {moved}.");
        await WaitDeliveredAsync(seed.UserIds.Count);
        AssertArrivedOnce(seed);
    }

    [Fact]
    public async Task BackfillThrivestackAsync_QuickChunks_GrowFromTheInitialSizeUpToChunkSize()
    {
        await SeedAsync(appUsers: 0, numberedUsers: 450, guests: 0, teamMembers: 0);
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var sizes = new ChunkSizes();

        var result = await RunAsync(new ThrivestackBackfillOptions { ChunkSize = 300 }, sizes, time: clock);

        Assert.True(result.Completed);
        Assert.Equal([BackfillChunkSizer.InitialSize, 2 * BackfillChunkSizer.InitialSize, 450 - (3 * BackfillChunkSizer.InitialSize)], sizes.Users);
    }

    [Fact]
    public async Task BackfillThrivestackAsync_ChunksHoldingTheLockTooLong_ShrinkToTheMinimumSize()
    {
        var seed = await SeedAsync(appUsers: 0, numberedUsers: 450, guests: 0, teamMembers: 0);
        var clock = new WatchedClock(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var sizes = new ChunkSizes();

        // Each chunk's checkpoint update takes a second of the fake clock; the clock, moved on whenever the backfill
        // waits, lets the pauses after chunks end.
        var running = RunWithAsync(new AdvanceClockInChunk(clock), new ThrivestackBackfillOptions { ChunkSize = 300 }, sizes, clock);
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(TimeSpan.FromSeconds(1), stopClock.Token);
        var result = await running.WaitAsync(Deadline);
        await stopClock.CancelAsync();
        await driving;

        Assert.True(result.Completed);
        Assert.Equal([100, 100, 100, 100, 50], sizes.Users);
        AssertOutboxHoldsEachOnce(seed, await harness.RowsAsync());
    }

    [Fact]
    public async Task BackfillThrivestackAsync_AfterAChunk_PausesAsLongAsTheChunkHeldTheLock()
    {
        var seed = await SeedAsync(appUsers: 0, numberedUsers: 250, guests: 0, teamMembers: 0);
        var clock = new WatchedClock(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var sizes = new ChunkSizes();

        // The first chunk holds the lock for a second of the fake clock, then commits; the next step waits on the clock.
        var running = RunWithAsync(new AdvanceClockInChunk(clock), new ThrivestackBackfillOptions { ChunkSize = 300 }, sizes, clock);
        await WaitUntilAsync(() => PendingCount() >= BackfillChunkSizer.InitialSize);
        await clock.WaitForWaitsAsync(1, due => due == TimeSpan.FromSeconds(1), Deadline);
        var reportedBeforeThePause = sizes.Users.Count;
        using var stopClock = new CancellationTokenSource();
        var driving = clock.AdvanceOnEveryWaitAsync(TimeSpan.FromSeconds(1), stopClock.Token);
        var result = await running.WaitAsync(Deadline);
        await stopClock.CancelAsync();
        await driving;

        Assert.True(result.Completed);
        Assert.Equal(0, reportedBeforeThePause);
        AssertOutboxHoldsEachOnce(seed, await harness.RowsAsync());
    }

    [Fact]
    public async Task BackfillThrivestackAsync_ContextTrackingEntitiesOrBadOptions_Throws()
    {
        await using var context = NewContext();
        context.Guests.Add(new Guest { Id = 5 });

        var tracked = await Assert.ThrowsAsync<InvalidOperationException>(() => context.BackfillThrivestackAsync());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => NewContext().BackfillThrivestackAsync(new ThrivestackBackfillOptions { ChunkSize = 0 }));
        var reserved = await Assert.ThrowsAsync<ArgumentException>(() => NewContext().BackfillThrivestackAsync(new ThrivestackBackfillOptions { Name = "(dispatcher)" }));
        Assert.Contains("not starting with '('", reserved.Message, StringComparison.Ordinal);

        Assert.Contains("tracks no entities", tracked.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("thrivestack_backfill", "AddThrivestackBackfill")]
    [InlineData("thrivestack_outbox", "AddThrivestackOutbox")]
    public async Task BackfillThrivestackAsync_TableNotCreated_ThrowsNamingTheTableAndHowToCreateIt(string table, string migration)
    {
        // A database migrated before the library's tables were added to the model: the database's own error names the table only.
        await SeedAsync(appUsers: 0, numberedUsers: 3, guests: 0, teamMembers: 0);
        await using (var context = PlainContext())
        {
            await context.Database.ExecuteSqlRawAsync(table == "thrivestack_outbox" ? "DROP TABLE thrivestack_outbox" : "DROP TABLE thrivestack_backfill");
        }

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => RunAsync(new ThrivestackBackfillOptions()));

        Assert.IsAssignableFrom<DbException>(error.InnerException);
        Assert.Contains($"'{table}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist in this database", error.Message, StringComparison.Ordinal);
        Assert.Contains($"'dotnet ef migrations add {migration}', then 'dotnet ef database update'", error.Message, StringComparison.Ordinal);
        Assert.Contains("Database.EnsureThrivestackOutboxCreated()", error.Message, StringComparison.Ordinal);
        Assert.Contains("The backfill named 'default' cannot run until it exists.", error.Message, StringComparison.Ordinal);
    }

    protected abstract Task<TestDatabase> CreateDatabaseAsync();

    private static void AssertOutboxHoldsEachOnce(Seeded seed, List<OutboxMessage> rows)
    {
        var users = rows.Where(r => r.GroupId is null).Select(r => r.UserId).Order(StringComparer.Ordinal).ToList();
        var memberships = rows.Where(r => r.GroupId is not null).Select(r => (r.UserId, r.GroupId!)).Order().ToList();
        Assert.Equal(seed.UserIds.Order(StringComparer.Ordinal), users);
        Assert.Equal(seed.Memberships.Order(), memberships);
        Assert.All(rows.Where(r => r.GroupId is null), r => Assert.Equal(OutboxEventKind.Backfill, r.Kind));
    }

    private void AssertArrivedOnce(Seeded seed)
    {
        var events = harness.StandIn.Events;
        Assert.Equal(seed.UserIds.Order(StringComparer.Ordinal), events.Where(e => e.GroupId is null).Select(e => e.UserId).Order(StringComparer.Ordinal));
        Assert.Equal(seed.Memberships.Order(), events.Where(e => e.GroupId is not null).Select(e => (e.UserId, e.GroupId!)).Order());
    }

    // The backfill's copy may be coalesced away (live wins in one claim) or delivered before the edit; either way the
    // user's last event, once nothing is pending, must carry the edited value.
    private async Task AssertLastEmailAsync(string userId, string email)
    {
        await harness.StandIn.WaitUntilAsync(
            s => s.EventsFor(userId).Any(e => e.GroupId is null && e.Traits?.GetProperty("email").GetString() == email), Deadline);
        await harness.WaitForOutboxAsync(rows => rows.All(r => r.State != OutboxRowState.Pending), Deadline);
        var received = harness.StandIn.EventsFor(userId).Where(e => e.GroupId is null).ToList();
        Assert.Equal(email, received[^1].Traits!.Value.GetProperty("email").GetString());
    }

    private async Task WaitDeliveredAsync(int count)
    {
        await harness.StandIn.WaitForEventsAsync(count, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.All(r => r.State != OutboxRowState.Pending), Deadline);
    }

    // Every condition waited on follows a command or commit of some context of the database: re-read after each one.
    private Task WaitUntilAsync(Func<bool> condition) =>
        harness.Database.Activity.WaitUntilAsync(() => Task.FromResult(condition()), met => met, Deadline, _ => "The condition was not met before the deadline.");

    // Unwatched: a read inside a wait on the database's activity must not wake that wait.
    private int PendingCount()
    {
        using var context = harness.Database.CreateUnwatchedContext();
        return context.Set<OutboxMessage>().Count(m => m.State == OutboxRowState.Pending);
    }

    // TestDbContext takes non-generic options, so a second AddDbContext would hand it the wrong ones.
    private IHost BuildHost() =>
        harness.BuildHost(services: s => s.AddScoped(provider =>
        {
            var builder = new DbContextOptionsBuilder<BackfillDbContext>().UseApplicationServiceProvider(provider);
            harness.Database.Configure(builder);
            return new BackfillDbContext(builder.AddThrivestackIdentifyInterceptor().Options);
        }));

    private async Task<ThrivestackBackfillResult> RunAsync(
        ThrivestackBackfillOptions options, IProgress<ThrivestackBackfillProgress>? progress = null, CancellationToken cancellationToken = default, TimeProvider? time = null)
    {
        await using var context = NewContext(time);
        return await context.BackfillThrivestackAsync(options, progress, cancellationToken);
    }

    protected async Task<ThrivestackBackfillResult> RunWithAsync(
        IInterceptor interceptor, ThrivestackBackfillOptions options, IProgress<ThrivestackBackfillProgress> progress, TimeProvider? time = null)
    {
        var builder = new DbContextOptionsBuilder<BackfillDbContext>();
        harness.Database.Configure(builder);
        if (time is null)
        {
            builder.AddThrivestackIdentifyInterceptor();
        }
        else
        {
            builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(time));
        }

        await using var context = new BackfillDbContext(builder.AddInterceptors(interceptor).Options);
        return await context.BackfillThrivestackAsync(options, progress);
    }

    private BackfillDbContext NewContext(TimeProvider? time = null)
    {
        var builder = new DbContextOptionsBuilder<BackfillDbContext>();
        harness.Database.Configure(builder);
        if (time is null)
        {
            builder.AddThrivestackIdentifyInterceptor();
        }
        else
        {
            builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(time));
        }

        return new BackfillDbContext(builder.Options);
    }

    // Without the interceptor: the rows that exist before the library was adopted.
    protected BackfillDbContext PlainContext()
    {
        var builder = new DbContextOptionsBuilder<BackfillDbContext>();
        harness.Database.Configure(builder);
        return new BackfillDbContext(builder.Options);
    }

    private async Task<Seeded> SeedAsync(int appUsers, int numberedUsers, int guests, int teamMembers)
    {
        await using var context = PlainContext();
        var apps = Enumerable.Range(0, appUsers).Select(i => new AppUser
        {
            Id = Guid.NewGuid(),
            Email = $"app{i}@example.com",
            FirstName = i % 2 == 0 ? $"First{i}" : null,
            Phones = i % 3 == 0 ? ["+1 555 0100"] : [],
            Age = 20 + i,
            Address = new Address { City = $"City{i}" },
        }).ToList();
        foreach (var app in apps)
        {
            context.Users.Add(app);
            context.Entry(app).Property("Plan").CurrentValue = "pro";
        }

        var numbered = Enumerable.Range(0, numberedUsers).Select(i => new NumberedUser { Email = $"n{i}@example.com", Name = i % 2 == 0 ? $"Name {i}" : null }).ToList();
        context.NumberedUsers.AddRange(numbered);
        var workspaces = new[] { new Workspace { Name = "A" }, new Workspace { Name = "B" } };
        context.Workspaces.AddRange(workspaces);

        // Explicit ids far from the identity users' ids, so user ids never collide across the two types.
        var guestRows = Enumerable.Range(0, guests).Select(i => new Guest { Id = 100_000 + i, Nickname = i % 2 == 1 ? $"g{i}" : null, Email = i % 2 == 1 ? $"g{i}@example.com" : null }).ToList();
        context.Guests.AddRange(guestRows);
        var teams = Enumerable.Range(0, teamMembers).Select(i => new TeamMember { UserId = Guid.NewGuid(), TeamId = $"team-{i % 3}", Role = "member" }).ToList();
        context.TeamMembers.AddRange(teams);
        await context.SaveChangesAsync();

        // Every other numbered user belongs to a workspace; the others have no membership.
        var members = numbered.Where((_, i) => i % 2 == 0).Select((u, i) => new WorkspaceMember { UserId = u.Id, WorkspaceId = workspaces[i % 2].Id }).ToList();
        context.Members.AddRange(members);
        await context.SaveChangesAsync();

        var invariant = CultureInfo.InvariantCulture;
        return new Seeded(
            [
                .. apps.Select(a => a.Id.ToString("D")),
                .. numbered.Select(n => n.Id.ToString(invariant)),
                .. guestRows.Select(g => g.Id.ToString(invariant)),
            ],
            [
                .. members.Select(m => (m.UserId.ToString(invariant), m.WorkspaceId.ToString(invariant))),
                .. teams.Select(t => (t.UserId.ToString("D"), t.TeamId)),
            ],
            numbered.Select(n => n.Id).ToList(),
            apps.Count > 0 ? apps[0].Id.ToString("D") : "",
            guests > 0 ? guestRows[0].Id.ToString(invariant) : "");
    }

    private sealed record Seeded(List<string> UserIds, List<(string UserId, string GroupId)> Memberships, List<int> NumberedIds, string FirstAppUser, string GuestWithoutTraits);

    /// <summary>Reports on the backfill's own thread (<see cref="Progress{T}"/> would post to the thread pool).</summary>
    private sealed class SyncProgress(Action<ThrivestackBackfillProgress> report) : IProgress<ThrivestackBackfillProgress>
    {
        public void Report(ThrivestackBackfillProgress value) => report(value);
    }

    /// <summary>The number of users each chunk read, from the progress reported after every chunk.</summary>
    private sealed class ChunkSizes : IProgress<ThrivestackBackfillProgress>
    {
        private long users;

        public List<long> Users { get; } = [];

        public void Report(ThrivestackBackfillProgress value)
        {
            if (value.ProcessedUsers > users)
            {
                Users.Add(value.ProcessedUsers - users);
                users = value.ProcessedUsers;
            }
        }
    }

    /// <summary>Moves the fake clock a second inside each chunk's transaction (at its checkpoint update).</summary>
    private sealed class AdvanceClockInChunk(FakeTimeProvider clock) : DbCommandInterceptor
    {
        public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            if (command.CommandText.Contains("last_key", StringComparison.Ordinal))
            {
                clock.Advance(TimeSpan.FromSeconds(1));
            }

            return base.NonQueryExecutingAsync(command, eventData, result, cancellationToken);
        }
    }

    /// <summary>Fails the checkpoint update of the n-th chunk, after that chunk's outbox rows were inserted.</summary>
    private sealed class FailCheckpointUpdate(int failAt) : DbCommandInterceptor
    {
        private int seen;

        public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            if (command.CommandText.Contains("last_key", StringComparison.Ordinal) && ++seen == failAt)
            {
                throw new InjectedException();
            }

            return base.NonQueryExecutingAsync(command, eventData, result, cancellationToken);
        }
    }

    /// <summary>
    /// Holds every chunk between its read of numbered users and its insert: right after the read, another connection
    /// edits the first user after the chunk's keyset position (a user the chunk has just read), and the chunk goes on
    /// only once that edit's event has reached the stand-in (reads before the lock) or the edit is under way (reads under
    /// the lock, which its event then waits for). A chunk that kept what it read would then deliver its older copy of the user last. A second
    /// read of the same position (the chunk reading again under its lock) edits nothing.
    /// </summary>
    private sealed class EditInEveryChunk(DispatchHarness harness, List<int> ids, bool chunkReadsBeforeItsLock) : DbCommandInterceptor
    {
        private readonly List<int> order = [.. ids.Order()];
        private readonly List<Task> saves = [];

        public List<int> Edited { get; } = [];

        public Task AllSavedAsync() => Task.WhenAll(saves);

        public override async ValueTask<DbDataReader> ReaderExecutedAsync(
            DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken cancellationToken = default)
        {
            if (!command.CommandText.Contains("SELECT * FROM \"NumberedUsers\"", StringComparison.Ordinal))
            {
                return result;
            }

            var position = command.Parameters.Cast<DbParameter>().FirstOrDefault(p => p.ParameterName.Contains("backfill_key0", StringComparison.Ordinal));
            var after = position is null ? int.MinValue : Convert.ToInt32(position.Value, CultureInfo.InvariantCulture);
            var target = order.FirstOrDefault(id => id > after);
            if (target == 0 || Edited.Contains(target))
            {
                return result;
            }

            Edited.Add(target);
            var email = $"edited-{target}@example.com";
            var issued = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            saves.Add(Task.Run(async () =>
            {
                var options = new DbContextOptionsBuilder<TestDbContext>(harness.Database.Options()).AddInterceptors(new UserUpdateIssued(issued)).Options;
                await using var context = new TestDbContext(options);
                var user = await context.NumberedUsers.SingleAsync(u => u.Id == target);
                user.Email = email;
                await context.SaveChangesAsync();
            }));

            if (chunkReadsBeforeItsLock)
            {
                await harness.StandIn.WaitUntilAsync(
                    s => s.EventsFor(target.ToString(CultureInfo.InvariantCulture)).Any(e => e.GroupId is null && e.Traits?.GetProperty("email").GetString() == email),
                    Deadline,
                    cancellationToken);
            }
            else
            {
                await issued.Task.WaitAsync(Deadline, cancellationToken);
            }

            return result;
        }
    }

    /// <summary>Tells when a save has issued its update of a numbered user (its outbox write follows, and may wait for a lock).</summary>
    private sealed class UserUpdateIssued(TaskCompletionSource issued) : DbCommandInterceptor
    {
        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            Note(command);
            return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
        }

        public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            Note(command);
            return base.NonQueryExecutingAsync(command, eventData, result, cancellationToken);
        }

        private void Note(DbCommand command)
        {
            if (command.CommandText.Contains("UPDATE \"NumberedUsers\"", StringComparison.Ordinal))
            {
                issued.TrySetResult();
            }
        }
    }

    /// <summary>
    /// Right after the backfill's first read of numbered users, another connection edits one of them, and the
    /// chunk waits (a bounded while) for that edit to reach the stand-in: if the chunk's read and insert were
    /// not protected, the edit would be delivered before the chunk's older copy of the user.
    /// </summary>
    private sealed class EditAfterRead(DispatchHarness harness, int userId) : DbCommandInterceptor
    {
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
                    user.Email = "edited@example.com";
                    await context.SaveChangesAsync();
                });
                try
                {
                    // Protected, the edit cannot commit (let alone arrive) before this chunk commits: the wait runs out.
                    await harness.StandIn.WaitUntilAsync(s => s.EventsFor(userId.ToString(CultureInfo.InvariantCulture)).Any(e => e.GroupId is null), TimeSpan.FromSeconds(2), cancellationToken);
                }
                catch (TimeoutException)
                {
                }
            }

            return result;
        }
    }

    /// <summary>
    /// An application's write that wraps the backfill chunk's read of numbered users: it starts when the read is about to
    /// run, writes its event (the read waits up to <see cref="EventWait"/> for that), then waits up to 2 s for the read and
    /// commits; the chunk, after its read, waits up to <see cref="CommitWait"/> for the commit. Protected, the chunk's read
    /// and the application's event write exclude each other, so the waits run out and the application writes after the chunk.
    /// </summary>
    private abstract class AppWriteAroundRead : DbCommandInterceptor
    {
        private readonly TaskCompletionSource eventWritten = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource read = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource committed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task? Finished { get; private set; }

        protected virtual TimeSpan EventWait => TimeSpan.FromSeconds(1);

        protected virtual TimeSpan CommitWait => TimeSpan.FromSeconds(2);

        protected Task ChunkRead => read.Task;

        public override async ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            if (Finished is null && IsChunkRead(command))
            {
                Finished = Task.Run(RunApplicationAsync);
                await BoundedAsync(eventWritten.Task, EventWait);
            }

            return result;
        }

        public override async ValueTask<DbDataReader> ReaderExecutedAsync(
            DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken cancellationToken = default)
        {
            if (IsChunkRead(command) && read.TrySetResult())
            {
                await BoundedAsync(committed.Task, CommitWait);
            }

            return result;
        }

        protected static async Task BoundedAsync(Task task, TimeSpan limit)
        {
            try
            {
                await task.WaitAsync(limit);
            }
            catch (TimeoutException)
            {
            }
        }

        /// <summary>The application's write; calls <paramref name="eventWritten"/> once its event is written.</summary>
        protected abstract Task ApplicationAsync(Action eventWritten);

        private static bool IsChunkRead(DbCommand command) =>
            command.CommandText.Contains("SELECT * FROM \"NumberedUsers\"", StringComparison.Ordinal);

        private async Task RunApplicationAsync()
        {
            try
            {
                await ApplicationAsync(() => eventWritten.TrySetResult());
            }
            finally
            {
                committed.TrySetResult();
            }
        }
    }

    /// <summary>
    /// The application transaction writes an event for one of the users first (as EF does when the outbox table sorts
    /// before the user table, or an explicit enqueue), and updates the user row after the chunk's read.
    /// </summary>
    private sealed class AppTransactionAroundRead(DispatchHarness harness, int userId) : AppWriteAroundRead
    {
        protected override async Task ApplicationAsync(Action eventWritten)
        {
            await using var context = harness.Database.CreateContext();
            await using var transaction = await context.Database.BeginTransactionAsync();
            await context.EnqueueThrivestackIdentifyAsync(
                userId.ToString(CultureInfo.InvariantCulture), new Dictionary<string, object?> { ["email"] = "edited@example.com" });
            eventWritten();
            await BoundedAsync(ChunkRead, TimeSpan.FromSeconds(2));
            await context.NumberedUsers.Where(u => u.Id == userId).ExecuteUpdateAsync(s => s.SetProperty(u => u.Email, "edited@example.com"));
            await transaction.CommitAsync();
        }
    }

    /// <summary>
    /// The application saves an edit of one of the users inside a <c>TransactionScope</c> (its event in EF's batch) and
    /// completes the scope after the chunk's read; then it waits for its event to reach the stand-in, so that no claim
    /// coalesces it with the chunk's copy (the chunk waits that long for it).
    /// </summary>
    private sealed class AmbientSaveAroundRead(DispatchHarness harness, int userId) : AppWriteAroundRead
    {
        protected override TimeSpan CommitWait => TimeSpan.FromSeconds(3);

        protected override async Task ApplicationAsync(Action eventWritten)
        {
            using (var scope = new System.Transactions.TransactionScope(System.Transactions.TransactionScopeAsyncFlowOption.Enabled))
            {
                await using (var context = harness.Database.CreateContext())
                {
                    var user = await context.NumberedUsers.SingleAsync(u => u.Id == userId);
                    user.Email = "edited@example.com";
                    await context.SaveChangesAsync();
                }

                eventWritten();
                await BoundedAsync(ChunkRead, TimeSpan.FromSeconds(2));
                scope.Complete();
            }

            await BoundedAsync(
                harness.StandIn.WaitUntilAsync(s => s.EventsFor(userId.ToString(CultureInfo.InvariantCulture)).Any(e => e.GroupId is null), TimeSpan.FromSeconds(3)),
                TimeSpan.FromSeconds(3));
        }
    }

    private sealed class InjectedException() : DbException("injected failure of the checkpoint update");
}
