using System.Diagnostics.Metrics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Backfill;

/// <summary>
/// The README's "Visible." promise of the backfill: progress after each chunk with a rate and the time left, a log line
/// every few seconds, and <c>thrivestack.backfill.chunk.duration</c> on the <c>Thrivestack.EfCore</c> meter. The backfill
/// runs on the test model (SQLite) without a dispatcher: these tests are about what it reports, not what it delivers.
/// </summary>
public sealed class BackfillVisibilityTests : IAsyncLifetime
{
    private const int Users = 50;
    private const int ChunkRows = 10;
    private const string ChunkDuration = "thrivestack.backfill.chunk.duration";

    // Further apart than the runner's 5 s between two progress lines: each chunk after the first may log one.
    private static readonly TimeSpan StepPerChunk = TimeSpan.FromSeconds(6);

    private readonly SqliteTestDatabase database = new();
    private readonly LogCollector logs = new();
    private ServiceProvider services = null!;

    public async Task InitializeAsync()
    {
        services = new ServiceCollection().AddMetrics().AddLogging(b => b.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug)).BuildServiceProvider();
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
    public async Task BackfillThrivestackAsync_EveryChunk_RecordsItsDurationInSecondsOnTheMeter()
    {
        using var meters = new MeterRecorder(services.GetRequiredService<IMeterFactory>());
        var reports = new List<ThrivestackBackfillProgress>();

        await using (var context = BackfillContext(clock: null))
        {
            var result = await context.BackfillThrivestackAsync(new ThrivestackBackfillOptions { ChunkSize = ChunkRows }, new SyncProgress(reports.Add));
            Assert.True(result.Completed);
        }

        // Progress is reported after every chunk, so there is one duration per report.
        var durations = meters.For(ChunkDuration);
        Assert.NotEmpty(reports);
        Assert.Equal(reports.Count, durations.Count);
        Assert.All(durations, d => Assert.Equal("s", d.Unit));
        Assert.All(durations, d => Assert.True(d.Value > 0, $"A chunk's transaction lasted {d.Value} s."));
        Assert.All(durations, d => Assert.True(d.Value < 600, $"A chunk's duration of {d.Value} is not in seconds."));
    }

    [Fact]
    public async Task BackfillThrivestackAsync_WhileRunning_ReportsAPositiveRateAndTheTimeLeft()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var reports = new List<ThrivestackBackfillProgress>();

        // Each chunk takes StepPerChunk of the fake clock, moved on as its progress is reported.
        await using (var context = BackfillContext(clock))
        {
            await context.BackfillThrivestackAsync(new ThrivestackBackfillOptions { ChunkSize = ChunkRows }, new SyncProgress(p =>
            {
                reports.Add(p);
                clock.Advance(StepPerChunk);
            }));
        }

        var running = reports.Where(r => r.ProcessedUsers + r.ProcessedMemberships is > 0 and < Users).ToList();
        Assert.NotEmpty(running);
        Assert.All(running, r =>
        {
            var processed = r.ProcessedUsers + r.ProcessedMemberships;
            Assert.Equal(Users, r.EstimatedTotal);
            Assert.True(r.Elapsed > TimeSpan.Zero, $"Elapsed {r.Elapsed} after {processed} rows.");
            Assert.True(r.RowsPerSecond > 0, $"Rate {r.RowsPerSecond} rows/s after {processed} rows in {r.Elapsed}.");
            Assert.Equal(processed / r.Elapsed.TotalSeconds, r.RowsPerSecond, 6);
            Assert.NotNull(r.EstimatedRemaining);
            Assert.True(r.EstimatedRemaining > TimeSpan.Zero, $"{r.EstimatedRemaining} left with {Users - processed} rows to go.");
            Assert.Equal((Users - processed) / r.RowsPerSecond, r.EstimatedRemaining!.Value.TotalSeconds, 3);
        });

        // The first user chunk: 10 of 50 users in one step of the clock, so four more steps for the 40 left.
        var first = running[0];
        Assert.Equal(ChunkRows, first.ProcessedUsers);
        Assert.Equal("NumberedUser", first.EntityType);
        Assert.Equal(ChunkRows / StepPerChunk.TotalSeconds, first.RowsPerSecond, 6);
        Assert.Equal((4 * StepPerChunk).TotalSeconds, first.EstimatedRemaining!.Value.TotalSeconds, 3);
    }

    [Fact]
    public async Task BackfillThrivestackAsync_RunningLongerThanTheLogInterval_LogsItsProgressEveryFewSeconds()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var chunks = 0;

        await using (var context = BackfillContext(clock))
        {
            await context.BackfillThrivestackAsync(new ThrivestackBackfillOptions { ChunkSize = ChunkRows }, new SyncProgress(_ =>
            {
                chunks++;
                clock.Advance(StepPerChunk);
            }));
        }

        // Each chunk (the first perhaps excepted) ends more than the 5 s between two lines after the last line.
        var lines = logs.Lines.Where(l => l.Is(901)).ToList();
        Assert.True(chunks > 2, $"Only {chunks} chunks ran.");
        Assert.True(lines.Count >= chunks - 1 && lines.Count <= chunks, $"{lines.Count} progress lines in {chunks} chunks: " + string.Join(" / ", lines.Select(l => l.Message)));
        Assert.All(lines, l => Assert.Equal(LogLevel.Information, l.Level));
        Assert.All(lines, l => Assert.Equal("Thrivestack.EfCore.Backfill", l.Category));
        var firstUsers = lines.First(l => l.Message.Contains("(NumberedUser)", StringComparison.Ordinal));
        Assert.Equal("Backfill default: 10 of about 50 users and memberships processed (NumberedUser), 2 rows/s, about 24 s left.", firstUsers.Message);
    }

    [Fact]
    public async Task BackfillThrivestackAsync_UsersSavedDuringAndAfterTheRun_NeverReportsMoreDoneThanItsEstimateNorWorkLeftOnceCompleted()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var reports = new List<ThrivestackBackfillProgress>();
        var added = 0;
        await using (var context = BackfillContext(clock))
        {
            await context.BackfillThrivestackAsync(new ThrivestackBackfillOptions { ChunkSize = ChunkRows }, new SyncProgress(p =>
            {
                reports.Add(p);
                clock.Advance(StepPerChunk);
                if (added++ == 0)
                {
                    // Users registered after the estimate was made, ahead of the chunks still to come.
                    using var app = PlainContext();
                    app.NumberedUsers.AddRange(Enumerable.Range(0, 15).Select(i => new NumberedUser { Email = $"late{i}@example.com" }));
                    app.SaveChanges();
                }
            }));
        }

        Assert.All(reports, p => Assert.True(p.ProcessedUsers + p.ProcessedMemberships <= p.EstimatedTotal, $"{p.ProcessedUsers + p.ProcessedMemberships} of about {p.EstimatedTotal}"));
        Assert.All(logs.Lines.Where(l => l.Is(901)), l => Assert.DoesNotContain("65 of about 50", l.Message, StringComparison.Ordinal));

        // Run again after completion (more users saved since): nothing is left, and the line says how to start over.
        await using (var app = PlainContext())
        {
            app.NumberedUsers.Add(new NumberedUser { Email = "later@example.com" });
            await app.SaveChangesAsync();
        }

        await using (var context = BackfillContext(clock))
        {
            await context.BackfillThrivestackAsync(new ThrivestackBackfillOptions { ChunkSize = ChunkRows });
        }

        var started = logs.Lines.Where(l => l.Is(900)).Last();
        Assert.Contains(": 0 of about 66 users and memberships left (completed before: run it with Restart to enqueue everyone again).", started.Message, StringComparison.Ordinal);
    }

    // Without the interceptor: the rows that exist before the library was adopted.
    private TestDbContext PlainContext()
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        database.Configure(builder);
        return new TestDbContext(builder.Options);
    }

    // The application's services give the backfill its meter factory and its loggers.
    private TestDbContext BackfillContext(TimeProvider? clock)
    {
        var builder = new DbContextOptionsBuilder<TestDbContext>()
            .UseApplicationServiceProvider(services)
            .UseLoggerFactory(services.GetRequiredService<ILoggerFactory>());
        database.Configure(builder);
        if (clock is null)
        {
            builder.AddThrivestackIdentifyInterceptor();
        }
        else
        {
            builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(clock));
        }

        return new TestDbContext(builder.Options);
    }

    /// <summary>Reports on the backfill's own thread (<see cref="Progress{T}"/> would post to the thread pool).</summary>
    private sealed class SyncProgress(Action<ThrivestackBackfillProgress> report) : IProgress<ThrivestackBackfillProgress>
    {
        public void Report(ThrivestackBackfillProgress value) => report(value);
    }
}
