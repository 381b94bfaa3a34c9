using System.Data.Common;
using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// Commit to arrival: a host with the interceptor and the dispatcher (default options) saves one new user at a
/// steady rate; each user's latency is the stand-in's arrival time of the request that carried its event minus
/// the time the save's transaction committed (a transaction interceptor of the application's context).
/// </summary>
internal static class LatencyScenario
{
    public static async Task RunAsync(BenchOptions options)
    {
        var rate = options.Int("rate", 100);
        var seconds = options.Int("seconds", 20);
        var count = rate * seconds;
        Console.WriteLine($"latency: {count:N0} saves at {rate}/s, one new user each, SQLite file, synchronous={SqliteBench.Synchronous}, default dispatcher options");
        Console.WriteLine($"machine: {Machine.Describe()}");

        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { RecordEvents = true });
        var path = SqliteBench.NewPath("latency");
        try
        {
            using (var context = SqliteBench.CreateContext(path, interceptor: false))
            {
                context.Database.EnsureCreated();
            }

            using var host = DispatcherHost.Build(o => SqliteBench.Configure(o, path, interceptor: false).AddInterceptors(new CommitClock()), standIn.Endpoint, standIn.ApiToken, 100);
            await host.StartAsync();

            // Warm-up at the same rate: tiered JIT needs 10-15 s of steady calls on this machine, EF's caches, the HTTP connection.
            var warmup = options.Int("warmup", 15) * rate;
            await SaveAtRateAsync(host, rate, warmup);
            await standIn.WaitForEventsAsync(warmup, TimeSpan.FromSeconds(60));
            standIn.Reset();

            var cpu = CpuSnapshot.Take();
            var (committed, saveTimes, elapsed) = await SaveAtRateAsync(host, rate, count);
            await standIn.WaitForEventsAsync(count, TimeSpan.FromSeconds(60));
            var end = CpuSnapshot.Take();
            await host.StopAsync();

            var arrivals = new Dictionary<string, DateTimeOffset>();
            foreach (var request in standIn.Requests.Where(r => r.StatusCode == 200))
            {
                foreach (var user in request.UserIds)
                {
                    arrivals.TryAdd(user, request.ReceivedAt);
                }
            }

            var latencies = committed.Select(c => (arrivals[c.Key] - c.Value).TotalMilliseconds).Order().ToArray();
            var requests = standIn.Requests.Count(r => r.StatusCode == 200);
            var (machine, _, _) = CpuSnapshot.Between(cpu, end);
            Console.WriteLine($"achieved {count / elapsed.TotalSeconds:0.0} saves/s over {elapsed.TotalSeconds:0.0} s; {standIn.AcceptedEventCount} events in {requests} requests ({(double)standIn.AcceptedEventCount / requests:0.00} per request); machine CPU {machine:0}%");
            Console.WriteLine($"SaveChangesAsync duration: p50 {Percentile(saveTimes, 50):0.00} ms, p99 {Percentile(saveTimes, 99):0.00} ms");
            Console.WriteLine($"commit -> arrival: min {latencies[0]:0.00} ms, p50 {Percentile(latencies, 50):0.00} ms, p95 {Percentile(latencies, 95):0.00} ms, "
                + $"p99 {Percentile(latencies, 99):0.00} ms, max {latencies[^1]:0.00} ms (target p50 < 20 ms, p99 < 100 ms)");
        }
        finally
        {
            SqliteBench.Delete(path);
        }
    }

    private static async Task<(Dictionary<string, DateTimeOffset> Committed, double[] SaveTimes, TimeSpan Elapsed)> SaveAtRateAsync(IHost host, int rate, int count)
    {
        var committed = new Dictionary<string, DateTimeOffset>(count);
        var saveTimes = new double[count];
        var interval = Stopwatch.Frequency / rate;
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            var due = start + (i * interval);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait);
            }

            await using var scope = host.Services.CreateAsyncScope();
            var context = scope.ServiceProvider.GetRequiredService<BenchDbContext>();
            var user = BenchUsers.New(i);
            context.Users.Add(user);
            var before = Stopwatch.GetTimestamp();
            await context.SaveChangesAsync();
            committed[user.Id.ToString()] = context.CommittedAt ?? throw new InvalidOperationException("The save did not commit a transaction.");
            saveTimes[i] = Stopwatch.GetElapsedTime(before).TotalMilliseconds;
        }

        Array.Sort(saveTimes);
        return (committed, saveTimes, Stopwatch.GetElapsedTime(start));
    }

    private static double Percentile(double[] sorted, double percentile) =>
        sorted[Math.Clamp((int)Math.Ceiling(percentile / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>Stamps the context with the time its transaction committed (before the interceptor's nudge).</summary>
    private sealed class CommitClock : DbTransactionInterceptor
    {
        public override void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => Stamp(eventData);

        public override Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            Stamp(eventData);
            return Task.CompletedTask;
        }

        private static void Stamp(TransactionEndEventData eventData)
        {
            if (eventData.Context is BenchDbContext context)
            {
                context.CommittedAt = DateTimeOffset.UtcNow;
            }
        }
    }
}
