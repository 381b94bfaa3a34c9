using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Backfill;

/// <summary>
/// A backfill that waits for room in the outbox says so while it waits (the README's "Visible."): without a dispatcher
/// that drains the outbox (a one-off command while the app is down) it would otherwise wait in silence for ever. No
/// dispatcher runs here; the fake clock moves one second each time the backfill parks on a poll.
/// </summary>
public sealed class BackfillWaitLogTests : IAsyncLifetime
{
    private const int Users = 50;
    private const int Limit = 10;

    private static readonly TimeSpan Step = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly SqliteTestDatabase database = new();
    private readonly LogCollector logs = new();
    private readonly WatchedClock clock = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
    private ServiceProvider services = null!;

    public async Task InitializeAsync()
    {
        services = new ServiceCollection().AddLogging(b => b.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug)).BuildServiceProvider();
        await database.CreateSchemaAsync();
        await using var context = PlainContext();
        context.NumberedUsers.AddRange(Enumerable.Range(0, Users).Select(i => new NumberedUser { Email = $"n{i}@example.com" }));
        await context.SaveChangesAsync();
    }

    public async Task DisposeAsync()
    {
        await services.DisposeAsync();
        await database.DisposeAsync();
    }

    [Fact]
    public async Task BackfillThrivestackAsync_BacklogNothingDrains_LogsTheWaitEvery15SecondsThenWarnsAfterAMinuteWithoutProgress()
    {
        // Chunks of 10 with room for 10: the second chunk leaves 20 pending, and nothing delivers them.
        using var stop = new CancellationTokenSource();
        var running = RunAsync(stop.Token);

        var polls = await DriveClockAsync(running, TimeSpan.FromSeconds(90));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);

        var began = Assert.Single(logs.Lines, l => l.Is(903));
        Assert.Equal(LogLevel.Debug, began.Level);
        var waiting = logs.Lines.Where(l => l.Is(908)).ToList();
        var stalled = logs.Lines.Where(l => l.Is(909)).ToList();

        // One line per 15 s of waiting, not one per poll: Information at 15 to 45 s, Warning at 60 s (a minute into the wait
        // without a lower count: the first count stands for the backlog the wait began with), then a minute apart.
        Assert.Equal(90, polls);
        Assert.Equal(3, waiting.Count);
        Assert.Single(stalled);
        Assert.All(waiting, l => Assert.Equal(LogLevel.Information, l.Level));
        Assert.All(stalled, l => Assert.Equal(LogLevel.Warning, l.Level));
        Assert.All(stalled, l => Assert.Equal("Thrivestack.EfCore.Backfill", l.Category));
        Assert.Equal(
            "Backfill default has waited 15 s for delivery: 20 identify events are pending in the outbox of TestDbContext, more than "
            + "MaxPendingEvents (10). It goes on once a dispatcher has delivered them; one must run for TestDbContext, in this process or "
            + "another (services.AddThrivestackIdentify<TestDbContext>(...)). Or raise ThrivestackBackfillOptions.MaxPendingEvents.",
            waiting[0].Message);
        Assert.Contains("has waited 45 s for delivery:", waiting[2].Message, StringComparison.Ordinal);
        Assert.Equal(
            "Backfill default has waited 1 min for delivery, and the backlog has not gone down for 1 min: 20 identify events are pending "
            + "in the outbox of TestDbContext, more than MaxPendingEvents (10). Is a dispatcher for TestDbContext running, in this process "
            + "or another (services.AddThrivestackIdentify<TestDbContext>(...)), and is it sending (see its logs)? Or raise "
            + "ThrivestackBackfillOptions.MaxPendingEvents.",
            stalled[0].Message);
    }

    [Fact]
    public async Task BackfillThrivestackAsync_BacklogDrainingSlowly_KeepsTheWaitAtInformation()
    {
        // A slow dispatcher: one event goes out between two lines, so the backlog keeps going down but stays above the limit.
        using var stop = new CancellationTokenSource();
        var running = RunAsync(stop.Token);
        var drained = 0;

        await DriveClockAsync(running, TimeSpan.FromSeconds(90), async () =>
        {
            if (logs.Count(908) > drained)
            {
                drained++;
                await using var context = PlainContext();
                await context.Set<OutboxMessage>().OrderBy(m => m.Id).Take(1).ExecuteDeleteAsync();
            }
        });
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);

        var waiting = logs.Lines.Where(l => l.Is(908)).Select(l => l.Message).ToList();
        Assert.Equal(0, logs.Count(909));
        Assert.Equal(6, waiting.Count);
        Assert.Equal(["20", "19", "18", "17", "16", "15"], waiting.Select(m => Regex.Match(m, ": ([0-9]+) identify events are pending").Groups[1].Value));
    }

    private Task<ThrivestackBackfillResult> RunAsync(CancellationToken cancellationToken) =>
        Task.Run(async () =>
        {
            await using var context = BackfillContext();
            return await context.BackfillThrivestackAsync(
                new ThrivestackBackfillOptions { ChunkSize = 10, MaxPendingEvents = Limit, PollInterval = TimeSpan.FromSeconds(1) },
                cancellationToken: cancellationToken);
        });

    /// <summary>
    /// Moves the clock by <see cref="Step"/> each time the backfill parks on a wait (after <paramref name="whileParked"/>),
    /// until it moved <paramref name="until"/> and the backfill parked again; returns how many waits it moved past.
    /// </summary>
    private async Task<int> DriveClockAsync(Task running, TimeSpan until, Func<Task>? whileParked = null)
    {
        var advanced = 0;
        var moved = TimeSpan.Zero;
        var deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            var (started, _, next) = clock.LatestWait();
            if (started > advanced)
            {
                if (moved >= until)
                {
                    // Parked again: every line of the time moved has been written.
                    return advanced;
                }

                if (whileParked is not null)
                {
                    await whileParked();
                }

                advanced = started;
                clock.Advance(Step);
                moved += Step;
                continue;
            }

            if (running.IsCompleted)
            {
                await running;
                Assert.Fail($"The backfill ended after {moved} of waiting.");
            }

            var left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, $"The backfill did not wait on the clock again after {moved}.");
            await Task.WhenAny(next, running).WaitAsync(left);
        }
    }

    // Without the interceptor: the rows that exist before the library was adopted.
    private TestDbContext PlainContext()
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        database.Configure(builder);
        return new TestDbContext(builder.Options);
    }

    private TestDbContext BackfillContext()
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>()
            .UseApplicationServiceProvider(services)
            .UseLoggerFactory(services.GetRequiredService<ILoggerFactory>());
        database.Configure(builder);
        return new TestDbContext(builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(clock)).Options);
    }
}
