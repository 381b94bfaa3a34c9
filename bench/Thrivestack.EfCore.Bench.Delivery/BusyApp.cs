using System.Diagnostics;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// The busy app, one variant in its own process: a host whose writers save one new user per DI scope (a pooled
/// context by default, as a web request gets it) as fast as they can. <c>A</c> has no library, <c>C</c> the interceptor only,
/// <c>B</c> the interceptor and the dispatcher with default options. Talks to <see cref="BusyScenario"/> over stdin/stdout:
/// WARM, then (after "go") RESULT, then DRAINED.
/// </summary>
internal static class BusyApp
{
    /// <summary><c>--request register</c>: each save first checks that no user has the email (a sign-up endpoint's query).</summary>
    private static bool register;

    public static async Task<int> RunAsync(BenchOptions options)
    {
        var variant = options.Get("variant", "A");
        var path = options.Get("path", "");
        var writers = options.Int("writers", 1);
        register = options.Get("request", "insert") == "register";
        var profile = options.Get("profile", "false") == "true" ? new BusyProfile(SqliteBench.BusyTimeout) : null;
        using var host = Build(variant, path, new Uri(options.Get("endpoint", "")), options.Get("token", ""), options.Get("context", "pool"), profile);
        await host.StartAsync();

        var warm = await WarmUpAsync(host.Services, writers, TimeSpan.FromSeconds(options.Int("warmup", 15)));
        if (variant == "B")
        {
            await WaitForEmptyOutboxAsync(path, TimeSpan.FromMinutes(2));
        }
        else if (variant == "C")
        {
            // Nothing ships in C: start the measure from an empty outbox, as B does.
            SqliteBench.Execute(path, $"DELETE FROM {SqliteBench.Outbox};");
        }

        Console.WriteLine(FormattableString.Invariant($"WARM {warm.Saves} saves in a {warm.Elapsed.TotalSeconds:0} s warm-up ({warm.Saves / warm.Elapsed.TotalSeconds:0}/s)"));
        if (await Console.In.ReadLineAsync() != "go")
        {
            return 1;
        }

        profile?.Clear();
        var cpu = CpuSnapshot.Take();
        var run = await SaveAsync(host.Services, writers, TimeSpan.FromSeconds(options.Int("seconds", 20)));
        var end = CpuSnapshot.Take();
        var pending = variant == "A" ? 0 : SqliteBench.Pending(path);
        var (machine, _, process) = CpuSnapshot.Between(cpu, end);
        foreach (var line in profile?.Report(run.Elapsed, run.Saves) ?? [])
        {
            Console.WriteLine("  " + line);
        }

        var latencies = run.Latencies;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT saves={run.Saves} seconds={run.Elapsed.TotalSeconds:0.000} p50={Percentile(latencies, 50):0.000} p99={Percentile(latencies, 99):0.000} "
            + $"max={latencies[^1]:0.000} pending={pending} cpu={process:0.00} machine={machine:0.0} gen0={GC.CollectionCount(0)} gen2={GC.CollectionCount(2)} "
            + $"jit={end.JitMethods - cpu.JitMethods} jitms={(end.JitTime - cpu.JitTime).TotalMilliseconds:0} alloc={(end.Allocated - cpu.Allocated) / run.Saves} written={(end.Written - cpu.Written) / run.Saves}"));

        var drain = Stopwatch.StartNew();
        if (variant == "B")
        {
            await WaitForEmptyOutboxAsync(path, TimeSpan.FromMinutes(2));
        }

        Console.WriteLine(FormattableString.Invariant($"DRAINED {drain.Elapsed.TotalSeconds:0.000}"));
        await host.StopAsync();
        return 0;
    }

    private static IHost Build(string variant, string path, Uri endpoint, string token, string context, BusyProfile? profile)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders().AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        void Database(DbContextOptionsBuilder o)
        {
            SqliteBench.Configure(o, path, interceptor: false);
            if (profile is not null)
            {
                o.AddInterceptors(profile);
            }

            switch (variant)
            {
                case "B":
                    o.AddThrivestackIdentifyInterceptor();
                    break;
                case "C":
                    o.AddThrivestackIdentifyInterceptor(i => i.DispatchedElsewhere());
                    break;
            }
        }

        if (context == "pool")
        {
            builder.Services.AddDbContextPool<BenchDbContext>(Database);
        }
        else
        {
            builder.Services.AddDbContext<BenchDbContext>(Database);
        }

        if (variant == "B")
        {
            builder.Services.AddThrivestackIdentify<BenchDbContext>(o =>
            {
                o.Endpoint = endpoint;
                o.ApiToken = token;
            });
        }

        return builder.Build();
    }

    /// <summary>
    /// Saves for at least <paramref name="least"/>, then on in 2 s slices until one JIT-compiles at most 5 methods (at most
    /// 2 min): tiered compilation of the dispatcher's code as well as the app's, which a loaded 2-core machine delays, must
    /// not fall into the measure (15 s left B compiling 1,800 methods, 6 s of JIT, in the next 10 s).
    /// </summary>
    private static async Task<(long Saves, TimeSpan Elapsed)> WarmUpAsync(IServiceProvider services, int writers, TimeSpan least)
    {
        var clock = Stopwatch.StartNew();
        var saves = (await SaveAsync(services, writers, least)).Saves;
        while (clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            var jit = System.Runtime.JitInfo.GetCompiledMethodCount();
            saves += (await SaveAsync(services, writers, TimeSpan.FromSeconds(2))).Saves;
            if (System.Runtime.JitInfo.GetCompiledMethodCount() - jit <= 5)
            {
                break;
            }
        }

        return (saves, clock.Elapsed);
    }

    /// <summary>Each writer saves one new user per scope until <paramref name="length"/> has passed; every save's duration in ms, sorted.</summary>
    private static async Task<(long Saves, TimeSpan Elapsed, double[] Latencies)> SaveAsync(IServiceProvider services, int writers, TimeSpan length)
    {
        var start = Stopwatch.GetTimestamp();
        var stopAt = start + (long)(length.TotalSeconds * Stopwatch.Frequency);
        var loops = Enumerable.Range(0, writers).Select(w => Task.Run(() => WriteAsync(services, w, stopAt))).ToArray();
        var times = (await Task.WhenAll(loops)).SelectMany(t => t).ToArray();
        var elapsed = Stopwatch.GetElapsedTime(start);
        Array.Sort(times);
        return (times.Length, elapsed, times);
    }

    private static async Task<List<double>> WriteAsync(IServiceProvider services, int writer, long stopAt)
    {
        BusyProfile.MarkApp();
        var times = new List<double>(100_000);
        for (var i = writer * 10_000_000; Stopwatch.GetTimestamp() < stopAt; i++)
        {
            var before = Stopwatch.GetTimestamp();
            await using (var scope = services.CreateAsyncScope())
            {
                var context = scope.ServiceProvider.GetRequiredService<BenchDbContext>();
                var user = BenchUsers.New(i);
                if (register && await context.Users.AnyAsync(u => u.Email == user.Email))
                {
                    throw new InvalidOperationException("The email is taken.");
                }

                context.Users.Add(user);
                await context.SaveChangesAsync();
            }

            times.Add(Stopwatch.GetElapsedTime(before).TotalMilliseconds);
        }

        return times;
    }

    private static async Task WaitForEmptyOutboxAsync(string path, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (SqliteBench.Pending(path) > 0)
        {
            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"The outbox still has {SqliteBench.Pending(path)} pending rows after {timeout}.");
            }

            await Task.Delay(5);
        }
    }

    private static double Percentile(double[] sorted, double percentile) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(percentile / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];
}
