using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// Backfill of N existing users (and one membership per fifth user) beside live traffic. This process seeds the
/// database (straight inserts, no outbox rows) and runs the stand-in; a child process, under a GC heap limit, is the
/// application: its host (interceptor + dispatcher), an app loop saving one new user per context at a steady rate,
/// the backfill call, and a sampler of the outbox's pending count. The same app loop then runs alone for as long as
/// the backfill phase took (the baseline), so save latency with and without a backfill comes from the same run.
/// </summary>
internal static class BackfillScenario
{
    private const string DefaultChildEnvironment = "DOTNET_GCHeapHardLimit=0x6400000";

    public static async Task<int> RunAsync(BenchOptions options)
    {
        if (options.Get("child", "false") == "true")
        {
            return await ChildAsync(options);
        }

        var users = options.Int("users", 1_000_000);
        var provider = options.Get("provider", "sqlite");
        var rate = options.Int("rate", 50);
        var chunk = options.Int("chunk", 500);
        var maxPending = options.Int("max-pending", 10_000);
        var poll = options.Int("poll-ms", 1000);
        var target = options.Int("target-ms", (int)new ThrivestackBackfillOptions().TargetChunkDuration.TotalMilliseconds);
        var memberships = BackfillSeed.Memberships(users);
        var environment = new Dictionary<string, string>();
        foreach (var setting in options.Get("child-env", DefaultChildEnvironment).Split(',', StringSplitOptions.RemoveEmptyEntries).Where(s => s != "none"))
        {
            var split = setting.IndexOf('=', StringComparison.Ordinal);
            environment[setting[..split]] = setting[(split + 1)..];
        }

        Console.WriteLine($"backfill: {users:N0} users + {memberships:N0} memberships, {provider}, chunk {chunk}, max pending {maxPending:N0}, poll {poll} ms, target chunk {target} ms, app saves {rate}/s, "
            + $"child environment {(environment.Count == 0 ? "(none)" : string.Join(' ', environment.Select(e => $"{e.Key}={e.Value}")))}"
            + (provider == "sqlite" ? $", synchronous={SqliteBench.Synchronous}, busy_timeout={SqliteBench.BusyTimeout}" : ""));
        Console.WriteLine($"machine: {Machine.Describe()}");
        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { RecordEvents = false });
        PgCluster? cluster = null;
        string? path = null;
        try
        {
            string connection;
            var seed = Stopwatch.StartNew();
            if (provider == "pg")
            {
                cluster = await PgCluster.StartAsync();
                connection = await cluster.CreateDatabaseAsync("bench_backfill");
                await BackfillSeed.PgAsync(connection, users, options.Get("outbox-storage", ""));
            }
            else
            {
                path = SqliteBench.NewPath("backfill");
                BackfillSeed.Sqlite(path, users);
                connection = path;
            }

            Console.WriteLine($"seeded {users:N0} users and {memberships:N0} memberships in {seed.Elapsed.TotalSeconds:0.0} s"
                + (path is null ? "" : $" ({new FileInfo(path).Length / 1024 / 1024} MB file)"));

            using var child = ChildProcess.Start(
                [
                    "backfill", "--child", "true", "--provider", provider, "--connection", connection,
                    "--endpoint", standIn.Endpoint.ToString(), "--token", standIn.ApiToken,
                    "--rate", Text(rate), "--chunk", Text(chunk), "--max-pending", Text(maxPending), "--poll-ms", Text(poll), "--target-ms", Text(target),
                    "--warmup", options.Get("warmup", "15"), "--baseline-max", options.Get("baseline-max", "600"),
                    "--synchronous", SqliteBench.Synchronous, "--busy-timeout", Text(SqliteBench.BusyTimeout), "--profile", options.Get("profile", "false"),
                ],
                environment);
            try
            {
                await ChildProcess.WaitForLineAsync(child, "WARM", TimeSpan.FromMinutes(5));
                standIn.Reset();
                await SendAsync(child, "go");
                var delivered = await ChildProcess.WaitForLineAsync(child, "DELIVERED", TimeSpan.FromMinutes(60));
                var accepted = standIn.AcceptedEventCount;
                await SendAsync(child, "baseline");
                var result = await ChildProcess.WaitForLineAsync(child, "RESULT", TimeSpan.FromMinutes(30));
                await child.WaitForExitAsync();
                var deliverSeconds = double.Parse(delivered.Split(' ')[1], CultureInfo.InvariantCulture);
                Console.WriteLine($"stand-in accepted {accepted:N0} events from the backfill's start until the outbox was empty "
                    + $"({accepted / deliverSeconds:N0} events/s; {users + memberships:N0} seeded rows, the rest are the app's saves and their backfill copies)");
                Console.WriteLine($"child: {delivered}");
                Console.WriteLine($"child: {result}");
                return accepted >= users + memberships ? 0 : 1;
            }
            finally
            {
                if (!child.HasExited)
                {
                    child.Kill();
                }
            }
        }
        finally
        {
            if (cluster is not null)
            {
                await cluster.DisposeAsync();
            }

            if (path is not null)
            {
                SqliteBench.Delete(path);
            }
        }
    }

    /// <summary>The application: host, warm-up, backfill beside the app loop, then the app loop alone.</summary>
    private static async Task<int> ChildAsync(BenchOptions options)
    {
        var provider = options.Get("provider", "sqlite");
        var connection = options.Get("connection", "");
        var rate = options.Int("rate", 50);
        var backfillOptions = new ThrivestackBackfillOptions
        {
            ChunkSize = options.Int("chunk", 500),
            MaxPendingEvents = options.Int("max-pending", 10_000),
            PollInterval = TimeSpan.FromMilliseconds(options.Int("poll-ms", 1000)),
            TargetChunkDuration = TimeSpan.FromMilliseconds(options.Int("target-ms", (int)new ThrivestackBackfillOptions().TargetChunkDuration.TotalMilliseconds)),
        };
        var profile = options.Get("profile", "false") == "true" ? new BusyProfile(SqliteBench.BusyTimeout) : null;
        using var host = BuildHost(provider, connection, new Uri(options.Get("endpoint", "")), options.Get("token", ""), profile);
        await host.StartAsync();

        // Warm-up at the app's rate (tiered JIT, EF's caches, the HTTP connection), until its events are delivered.
        var warm = await SaveAtRateAsync(host, rate, TimeSpan.FromSeconds(options.Int("warmup", 15)), CancellationToken.None, provider != "pg");
        await WaitForEmptyOutboxAsync(host);
        Console.WriteLine($"WARM {warm.Length}");
        Console.WriteLine($"child: after the warm-up (app saves and their deliveries, no backfill yet): working set {Machine.Mb(Machine.WorkingSet().Rss)} ({Machine.ResidentParts()}), peak {Machine.Mb(Machine.WorkingSet().PeakRss)}, JIT {System.Runtime.JitInfo.GetCompiledMethodCount()} methods, GC committed {Machine.Mb(GC.GetGCMemoryInfo().TotalCommittedBytes)}; {Machine.AnonymousMappings(8)}");
        if (await Console.In.ReadLineAsync() != "go")
        {
            return 1;
        }

        profile?.Clear();

        using var stop = new CancellationTokenSource();
        var progress = new LatestProgress();
        var sampler = SamplePendingAsync(host, progress, stop.Token);
        using var appStop = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        var app = SaveAtRateAsync(host, rate, Timeout.InfiniteTimeSpan, appStop.Token, provider != "pg");
        ThrivestackBackfillResult result;
        await using (var scope = host.Services.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<BenchDbContext>();
            result = await context.BackfillThrivestackAsync(backfillOptions, progress);
        }

        var enqueued = clock.Elapsed;
        await appStop.CancelAsync();
        var during = await app;
        Report(profile, clock.Elapsed, during.Length, "during the backfill");
        await WaitForEmptyOutboxAsync(host);
        var delivered = clock.Elapsed;
        await stop.CancelAsync();
        var peakPending = await sampler;
        var (_, peak) = Machine.WorkingSet();
        var gc = GC.GetGCMemoryInfo();
        var memory = $"peak working set (VmHWM) {Machine.Mb(peak)} (at the end {Machine.ResidentParts()}; {(provider == "pg" ? "PostgreSQL" : $"SQLite's allocations now {Machine.Mb(SQLitePCL.raw.sqlite3_memory_used())}, at most {Machine.Mb(SQLitePCL.raw.sqlite3_memory_highwater(0))}")}), GC committed {Machine.Mb(gc.TotalCommittedBytes)}, heap limit {Machine.Mb(gc.TotalAvailableMemoryBytes)}, JIT {System.Runtime.JitInfo.GetCompiledMethodCount()} methods, {Machine.AnonymousMappings(8)}, "
            + $"{(GCSettings.IsServerGC ? "server" : "workstation")} GC, collections gen0/1/2 {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"DELIVERED {enqueued.TotalSeconds:0.00} {delivered.TotalSeconds:0.00} enqueue {enqueued.TotalSeconds:0.0} s, deliver {delivered.TotalSeconds:0.0} s; "
            + $"backfill enqueued {result.UsersEnqueued:N0} users + {result.MembershipsEnqueued:N0} memberships (completed {result.Completed}); "
            + $"peak pending {peakPending:N0}; {memory}"));
        if (await Console.In.ReadLineAsync() != "baseline")
        {
            return 1;
        }

        var length = TimeSpan.FromSeconds(Math.Min(enqueued.TotalSeconds, options.Int("baseline-max", 600)));
        profile?.Clear();
        var baseline = await SaveAtRateAsync(host, rate, length, CancellationToken.None, provider != "pg");
        Report(profile, length, baseline.Length, "without it");
        await host.StopAsync();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT app saves during the backfill: {during.Length:N0} ({during.Length / enqueued.TotalSeconds:0.0}/s), p50 {Percentile(during, 50):0.00} ms, "
            + $"p99 {Percentile(during, 99):0.00} ms, max {during[^1]:0.00} ms; without (baseline, {length.TotalSeconds:0} s after it): {baseline.Length:N0} "
            + $"({baseline.Length / length.TotalSeconds:0.0}/s), p50 {Percentile(baseline, 50):0.00} ms, p99 {Percentile(baseline, 99):0.00} ms, "
            + $"max {baseline[^1]:0.00} ms; p50 {Percentile(during, 50) / Percentile(baseline, 50):0.00}x, p99 {Percentile(during, 99) / Percentile(baseline, 99):0.00}x"));
        return 0;
    }

    /// <summary>Where the statements' time went (<c>--profile true</c>, SQLite): see <see cref="BusyProfile"/>.</summary>
    private static void Report(BusyProfile? profile, TimeSpan wall, int saves, string phase)
    {
        foreach (var line in profile?.Report(wall, saves) ?? [])
        {
            Console.WriteLine($"profile, {phase}: {line}");
        }
    }

    private static IHost BuildHost(string provider, string connection, Uri endpoint, string token, BusyProfile? profile)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders().AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddDbContext<BenchDbContext>(o =>
        {
            if (provider == "pg")
            {
                o.UseNpgsql(connection);
            }
            else
            {
                SqliteBench.Configure(o, connection, interceptor: false);
                if (profile is not null)
                {
                    o.AddInterceptors(profile);
                }
            }

            o.AddThrivestackIdentifyInterceptor();
        });
        builder.Services.AddThrivestackIdentify<BenchDbContext>(o =>
        {
            o.Endpoint = endpoint;
            o.ApiToken = token;
        });
        return builder.Build();
    }

    /// <summary>One new user per DI scope (like a web request) at <paramref name="rate"/>/s; each SaveChangesAsync's duration in ms, sorted.</summary>
    private static async Task<double[]> SaveAtRateAsync(IHost host, int rate, TimeSpan length, CancellationToken cancellationToken, bool splitSaves = true)
    {
        BusyProfile.MarkApp();
        var times = new List<double>();
        var splits = new List<(double Wall, ThreadSchedule Split)>();
        var interval = Stopwatch.Frequency / rate;
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; !cancellationToken.IsCancellationRequested && (length == Timeout.InfiniteTimeSpan || Stopwatch.GetElapsedTime(start) < length); i++)
        {
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), start + (i * interval));
            if (wait > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(wait, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            await using var scope = host.Services.CreateAsyncScope();
            var context = scope.ServiceProvider.GetRequiredService<BenchDbContext>();
            context.Users.Add(BenchUsers.New(i));
            var schedule = ThreadSchedule.Read();
            var before = Stopwatch.GetTimestamp();
            await context.SaveChangesAsync(CancellationToken.None);
            var wall = Stopwatch.GetElapsedTime(before).TotalMilliseconds;
            times.Add(wall);
            splits.Add((wall, ThreadSchedule.Read() - schedule));
        }

        var slowest = splits.OrderByDescending(s => s.Wall).Take(Math.Max(1, splits.Count / 100)).ToList();
        // Only a save that runs on one thread throughout is split exactly: SQLite's (its asynchronous calls complete
        // synchronously), not PostgreSQL's, whose awaits resume on other threads.
        if (slowest.Count > 0 && splitSaves)
        {
            // The slowest 1 %: on a CPU, waiting for one (runnable: other threads had the cores), or neither (asleep:
            // SQLite's lock, a flush, a GC suspension). Only a save that ran on one thread throughout is split exactly.
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"slowest 1 % of {splits.Count} saves: {slowest.Average(s => s.Wall):0.00} ms on average = on a CPU {slowest.Average(s => s.Split.OnCpuMs):0.00} ms, "
                + $"runnable {slowest.Average(s => s.Split.RunnableMs):0.00} ms, asleep {slowest.Average(s => s.Wall - s.Split.OnCpuMs - s.Split.RunnableMs):0.00} ms"));
        }

        var sorted = times.ToArray();
        Array.Sort(sorted);
        return sorted;
    }

    /// <summary>The calling thread's time on a CPU and waiting for one (/proc/thread-self/schedstat), in ms.</summary>
    private readonly record struct ThreadSchedule(double OnCpuMs, double RunnableMs)
    {
        public static ThreadSchedule Read()
        {
            var fields = File.ReadAllText("/proc/thread-self/schedstat").Split(' ');
            return new ThreadSchedule(long.Parse(fields[0], CultureInfo.InvariantCulture) / 1e6, long.Parse(fields[1], CultureInfo.InvariantCulture) / 1e6);
        }

        public static ThreadSchedule operator -(ThreadSchedule a, ThreadSchedule b) => new(a.OnCpuMs - b.OnCpuMs, a.RunnableMs - b.RunnableMs);
    }

    /// <summary>The outbox's pending count every 200 ms until cancelled; returns the peak. Prints a line every 10 s.</summary>
    private static async Task<long> SamplePendingAsync(IHost host, LatestProgress progress, CancellationToken cancellationToken)
    {
        long peak = 0;
        var clock = Stopwatch.StartNew();
        var nextLine = TimeSpan.FromSeconds(10);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
        try
        {
            do
            {
                await using var scope = host.Services.CreateAsyncScope();
                var state = await scope.ServiceProvider.GetRequiredService<BenchDbContext>().GetThrivestackOutboxStateAsync(cancellationToken);
                peak = Math.Max(peak, state.Pending);
                if (clock.Elapsed >= nextLine)
                {
                    nextLine += TimeSpan.FromSeconds(10);
                    var p = progress.Latest;
                    Console.WriteLine($"{clock.Elapsed.TotalSeconds:0} s: pending {state.Pending:N0}, backfill processed {p?.ProcessedUsers ?? 0:N0} users + "
                        + $"{p?.ProcessedMemberships ?? 0:N0} memberships of ~{p?.EstimatedTotal ?? 0:N0}, {p?.RowsPerSecond ?? 0:N0} rows/s; working set {Machine.Mb(Machine.WorkingSet().Rss)}");
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
        }
        catch (OperationCanceledException)
        {
        }

        return peak;
    }

    private static async Task WaitForEmptyOutboxAsync(IHost host)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<BenchDbContext>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(30));
        while ((await context.GetThrivestackOutboxStateAsync(deadline.Token)).Pending > 0)
        {
            await Task.Delay(10, deadline.Token);
        }
    }

    private static async Task SendAsync(Process child, string line)
    {
        await child.StandardInput.WriteLineAsync(line);
        await child.StandardInput.FlushAsync();
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static double Percentile(double[] sorted, double percentile) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(percentile / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>Keeps the last progress report, synchronously (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class LatestProgress : IProgress<ThrivestackBackfillProgress>
    {
        public ThrivestackBackfillProgress? Latest { get; private set; }

        public void Report(ThrivestackBackfillProgress value) => Latest = value;
    }
}
