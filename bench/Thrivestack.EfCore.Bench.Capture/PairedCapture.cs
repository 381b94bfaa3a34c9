using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Bench.Capture;

/// <summary>
/// The capture measures again, as paired samples (<c>-- paired</c>): each round runs every variant for a block of
/// consecutive saves, in a shuffled order, so a change in the machine's background load hits both sides of a ratio
/// alike (blocks, not single saves, so that switching between two EF service providers costs no extra cache misses).
/// Each sample is a block's mean wall time, the thread's own CPU time (immune to being descheduled) and the bytes
/// allocated per save.
/// Same model, database and variants as the BenchmarkDotNet classes.
/// </summary>
internal static partial class PairedCapture
{
    /// <summary>
    /// Arguments: [scale of the round counts, default 1] [cases: insert1,insert100,insert1000,update,edit1; default all] [pg: on a
    /// throwaway PostgreSQL server (or THRIVESTACK_TEST_POSTGRES) instead of SQLite].
    /// </summary>
    public static void Run(string[] args)
    {
        var scale = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1.0;
        var cases = args.Length > 2 ? args[2].Split(',') : ["insert1", "insert100", "insert1000", "update", "edit1"];
        if (args.Length > 3 && args[3] == "pg")
        {
            var cluster = PgCluster.StartAsync().GetAwaiter().GetResult();
            try
            {
                BenchDatabase.PostgresServer = cluster.AdminConnectionString;
                Console.WriteLine($"paired capture measures on PostgreSQL; {Environment.ProcessorCount} cores; load average {File.ReadAllText("/proc/loadavg").Trim()}");
                RunCases(scale, cases);
            }
            finally
            {
                BenchDatabase.PostgresServer = null;
                cluster.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }

            return;
        }

        Console.WriteLine($"paired capture measures; database folder {BenchDatabase.Directory}; {Environment.ProcessorCount} cores; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        RunCases(scale, cases);
    }

    private static void RunCases(double scale, string[] cases)
    {
        Console.WriteLine("| case | variant | wall median | CPU median | CPU ratio (median of pairs) | wall ratio (median of pairs) | CPU vs NoOutbox | wall vs NoOutbox | allocated per save | allocated per outbox row |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (count, rounds, block) in new[] { (1, 60, 25), (100, 60, 3), (1000, 40, 1) })
        {
            if (cases.Contains($"insert{count}"))
            {
                Insert(count, (int)(rounds * scale), block);
            }
        }

        if (cases.Contains("update"))
        {
            Update((int)(60 * scale), 2);
        }

        if (cases.Contains("edit1"))
        {
            EditOne((int)(60 * scale), 25);
        }
    }

    private static void Insert(int count, int rounds, int block)
    {
        using var database = new BenchDatabase();
        var seed = 0;
        Sample Measure(string variant)
        {
            using var context = database.Create(interceptor: variant == "Interceptor");
            if (variant == "NoOutboxInTransaction")
            {
                context.Database.AutoTransactionBehavior = AutoTransactionBehavior.Always;
            }

            var users = BenchUsers.New(count, seed++);
            context.Users.AddRange(users);
            var prebuilt = variant == "RawInsertOnly" ? users.Select(u => HandWrittenOutbox.For(u, DateTime.UtcNow)).ToList() : null;
            var sample = Sample.Time(() =>
            {
                if (variant is "HandWrittenSql" or "RawInsertOnly")
                {
                    HandWrittenOutbox.SaveWithRawInsert(context, users, prebuilt);
                    return;
                }

                if (variant == "AppWritesOutbox")
                {
                    var now = DateTime.UtcNow;
                    foreach (var user in users)
                    {
                        context.Add(HandWrittenOutbox.For(user, now));
                    }
                }

                context.SaveChanges();
            });
            using var cleanup = database.Create(interceptor: false);
            cleanup.Database.ExecuteSqlRaw("DELETE FROM \"thrivestack_outbox\"; DELETE FROM \"Users\";");
            return sample;
        }

        // NoOutboxInTransaction: the floor of any atomic outbox for a save EF would send as one command without a
        // transaction (one new user): the same save with EF's transaction forced on. HandWrittenSql: the least an
        // application could write by hand for the same guarantee: that transaction, the same event JSON, and one raw
        // INSERT of its row (constant text, no tracking) before the commit.
        Report($"insert {count}", count == 1 ? ["AppWritesOutbox", "HandWrittenSql", "RawInsertOnly", "Interceptor", "NoOutbox", "NoOutboxInTransaction"] : ["AppWritesOutbox", "Interceptor", "NoOutbox"], count, rounds, block, Measure);
    }

    private static void Update(int rounds, int block)
    {
        using var database = new BenchDatabase();
        using (var seed = database.Create(interceptor: false))
        {
            seed.Users.AddRange(BenchUsers.New(1000, 0));
            seed.SaveChanges();
        }

        Sample Measure(string variant)
        {
            using var context = database.Create(interceptor: variant == "Interceptor");
            var now = DateTime.UtcNow;
            foreach (var user in context.Users.ToList())
            {
                user.LoginCount++;
                user.LastSeenAt = now;
            }

            return Sample.Time(() => context.SaveChanges());
        }

        // Nothing is captured: the save without the interceptor is the NoOutbox save.
        Report("update 1000, no trait", ["NoOutbox", "Interceptor"], 0, rounds, block, Measure);
    }

    /// <summary>
    /// A profile edit: one loaded user's trait changed and saved (an event whose traits are read back from the row inside
    /// the save's transaction, <c>TraitReadBack</c>).
    /// </summary>
    private static void EditOne(int rounds, int block)
    {
        using var database = new BenchDatabase();
        var users = BenchUsers.New(100, 0);
        using (var seed = database.Create(interceptor: false))
        {
            seed.Users.AddRange(users);
            seed.SaveChanges();
        }

        var edit = 0;
        Sample Measure(string variant)
        {
            using var context = database.Create(interceptor: variant == "Interceptor");
            var id = users[edit % users.Count].Id;
            var user = context.Users.Single(u => u.Id == id);
            user.FirstName = $"First {edit++}";
            var sample = Sample.Time(() => context.SaveChanges());
            if (edit % 100 == 0)
            {
                using var cleanup = database.Create(interceptor: false);
                cleanup.Database.ExecuteSqlRaw("DELETE FROM \"thrivestack_outbox\";");
            }

            return sample;
        }

        Report("edit 1 (a trait)", ["NoOutbox", "Interceptor"], 1, rounds, block, Measure);
    }

    /// <summary>Runs the variants in shuffled blocks; <paramref name="rows"/> outbox rows per save (0: none) for the allocation per row.</summary>
    private static void Report(string name, string[] variants, int rows, int rounds, int block, Func<string, Sample> measure)
    {
        var random = new Random(42);
        var samples = variants.ToDictionary(v => v, _ => new List<Sample>());
        Warmup.Run(name, () =>
        {
            foreach (var variant in variants)
            {
                measure(variant);
            }
        });
        if (Environment.GetEnvironmentVariable("THRIVESTACK_BENCH_LOOP") is { Length: > 0 } loop)
        {
            // Profiling aid: THRIVESTACK_BENCH_LOOP=<variant>:<seconds> runs one variant alone after the warm-up, so a
            // profiler attached to this process (perf record -p, dotnet-trace -p) sees only its steady state.
            var parts = loop.Split(':');
            Console.WriteLine($"// pid {Environment.ProcessId}: looping {parts[0]} for {parts[1]} s");
            var end = Stopwatch.GetTimestamp() + (long)(double.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) * Stopwatch.Frequency);
            var calls = 0;
            while (Stopwatch.GetTimestamp() < end)
            {
                measure(parts[0]);
                calls++;
            }

            Console.WriteLine($"// looped {parts[0]} {calls} times");
            return;
        }

        for (var round = 0; round < rounds; round++)
        {
            foreach (var variant in variants.OrderBy(_ => random.Next()))
            {
                var blockSamples = Enumerable.Range(0, block).Select(_ => measure(variant)).ToArray();
                samples[variant].Add(new Sample(blockSamples.Average(b => b.WallMs), blockSamples.Average(b => b.CpuMs), (long)blockSamples.Average(b => b.Allocated)));
            }
        }

        var baseline = samples[variants[0]];
        var noOutbox = samples["NoOutbox"];
        var noOutboxAllocated = Median(noOutbox.Select(s => (double)s.Allocated));
        foreach (var variant in variants)
        {
            var own = samples[variant];
            var cpuRatio = Median(own.Zip(baseline, (a, b) => a.CpuMs / b.CpuMs));
            var wallRatio = Median(own.Zip(baseline, (a, b) => a.WallMs / b.WallMs));
            var cpuVsNone = Median(own.Zip(noOutbox, (a, b) => a.CpuMs / b.CpuMs));
            var wallVsNone = Median(own.Zip(noOutbox, (a, b) => a.WallMs / b.WallMs));
            var allocated = Median(own.Select(s => (double)s.Allocated));
            var perRow = rows > 0 && !variant.StartsWith("NoOutbox", StringComparison.Ordinal) ? $"{(allocated - noOutboxAllocated) / rows / 1024:0.00} KB" : "-";
            Console.WriteLine($"| {name} | {variant} | {Median(own.Select(s => s.WallMs)):0.000} ms | {Median(own.Select(s => s.CpuMs)):0.000} ms | "
                + $"{cpuRatio:0.00}x | {wallRatio:0.00}x | {cpuVsNone:0.00}x | {wallVsNone:0.00}x | {allocated / 1024:0.0} KB | {perRow} |");
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private readonly record struct Sample(double WallMs, double CpuMs, long Allocated)
    {
        public static Sample Time(Action action)
        {
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            var cpu = ThreadCpuMs();
            var wall = Stopwatch.GetTimestamp();
            action();
            var wallMs = Stopwatch.GetElapsedTime(wall).TotalMilliseconds;
            return new Sample(wallMs, ThreadCpuMs() - cpu, GC.GetAllocatedBytesForCurrentThread() - allocated);
        }
    }

    /// <summary>CPU time of the calling thread (Linux CLOCK_THREAD_CPUTIME_ID); wall time elsewhere.</summary>
    private static double ThreadCpuMs()
    {
        if (!OperatingSystem.IsLinux())
        {
            return Stopwatch.GetTimestamp() * 1000.0 / Stopwatch.Frequency;
        }

        _ = ClockGetTime(3, out var time);
        return (time.Seconds * 1000.0) + (time.Nanoseconds / 1_000_000.0);
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
