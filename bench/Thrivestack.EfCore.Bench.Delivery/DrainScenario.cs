using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// Drain throughput, SQLite file: N pending rows shipped to the loopback stand-in by the real dispatcher, against
/// the hand-written ADO.NET + HttpClient loop on a fresh copy of the same data, in the same process and run.
/// </summary>
internal static class DrainScenario
{
    private const int WarmupRows = 20_000;
    private const int MaxWarmupRounds = 10;

    public static async Task RunAsync(BenchOptions options)
    {
        var rows = options.Int("rows", 100_000);
        var batches = options.Ints("batch", "100,1000");
        var rounds = options.Int("rounds", 2);
        var only = options.Get("only", "both");
        var breakdown = options.Get("breakdown", "false") == "true";
        Console.WriteLine($"drain: {rows:N0} rows, SQLite file, synchronous={SqliteBench.Synchronous}, batches {string.Join('/', batches)}, {rounds} round(s)");
        Console.WriteLine($"machine: {Machine.Describe()}");

        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { RecordEvents = false });
        var template = SqliteBench.NewPath("drain-template");
        var warmTemplate = SqliteBench.NewPath("drain-warm");
        var fill = Stopwatch.StartNew();
        SqliteBench.Fill(template, rows);
        SqliteBench.Fill(warmTemplate, WarmupRows);
        Console.WriteLine($"filled in {fill.Elapsed.TotalSeconds:0.0} s ({new FileInfo(template).Length / 1024 / 1024} MB file)");
        var results = new List<(int Batch, Run Library, Run Baseline)>();
        try
        {
            foreach (var batch in batches)
            {
                // One application host and one baseline loop per batch size, each with its own database file, kept for
                // every run: a real application drains a backlog with a host that has been running for a while (its
                // EF service provider, compiled queries and JIT-compiled code in place). A run appends the template's
                // rows to the outbox in one transaction, then times until everything is delivered.
                await using var library = only == "baseline" ? null : await LibrarySide.StartAsync(standIn, warmTemplate, batch, breakdown);
                using var baseline = only == "library" ? null : BaselineSide.Start(standIn, warmTemplate);
                await WarmUpAsync(standIn, warmTemplate, batch, library, baseline);
                for (var round = 1; round <= rounds; round++)
                {
                    library?.Breakdown?.Clear();
                    var libraryRun = library is null ? Run.None : await library.DrainAsync(template, rows);
                    var libraryReport = library?.Breakdown?.Report(TimeSpan.FromSeconds(libraryRun.Seconds));
                    using var baselineBreakdown = breakdown ? new Breakdown() : null;
                    BaselineDrain.Breakdown = baselineBreakdown;
                    var baselineRun = baseline is null ? Run.None : await baseline.DrainAsync(template, rows, batch);
                    BaselineDrain.Breakdown = null;
                    results.Add((batch, libraryRun, baselineRun));
                    Console.WriteLine(
                        $"batch {batch,5} round {round}: library {libraryRun.EventsPerSecond,9:N0} events/s ({libraryRun.Seconds:0.00} s, CPU {libraryRun.Cpu}), "
                        + $"baseline {baselineRun.EventsPerSecond,9:N0} events/s ({baselineRun.Seconds:0.00} s, CPU {baselineRun.Cpu}), ratio {libraryRun.EventsPerSecond / baselineRun.EventsPerSecond:0.00}x");
                    if (libraryReport is not null && !double.IsNaN(libraryRun.Seconds))
                    {
                        Console.WriteLine($"  library time:{Environment.NewLine}{libraryReport}");
                    }

                    if (baselineBreakdown is not null && !double.IsNaN(baselineRun.Seconds))
                    {
                        Console.WriteLine($"  baseline time:{Environment.NewLine}{baselineBreakdown.Report(TimeSpan.FromSeconds(baselineRun.Seconds))}");
                    }
                }
            }

            Console.WriteLine();
            Console.WriteLine("| batch | library events/s (best) | baseline events/s (best) | ratio (best/best) | target |");
            Console.WriteLine("| --- | --- | --- | --- | --- |");
            foreach (var group in results.GroupBy(r => r.Batch))
            {
                var libraryBest = group.Max(r => r.Library.EventsPerSecond);
                var baselineBest = group.Max(r => r.Baseline.EventsPerSecond);
                Console.WriteLine($"| {group.Key} | {libraryBest:N0} | {baselineBest:N0} | {libraryBest / baselineBest:0.00}x | >= 50,000/s and >= 0.7x |");
            }
        }
        finally
        {
            SqliteBench.Delete(template);
            SqliteBench.Delete(warmTemplate);
        }
    }

    /// <summary>
    /// JIT (tiered, with dynamic PGO: on 2 busy cores hot code needs ~15 s to reach its final tier) and the HTTP
    /// connection: paid here, on the same host and loop as the measures, until a round compiles almost nothing.
    /// </summary>
    private static async Task WarmUpAsync(ThrivestackStandIn standIn, string warmTemplate, int batch, LibrarySide? library, BaselineSide? baseline)
    {
        var warm = Stopwatch.StartNew();
        for (var round = 1; round <= MaxWarmupRounds; round++)
        {
            var before = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (library is not null)
            {
                await library.DrainAsync(warmTemplate, WarmupRows);
            }

            if (baseline is not null)
            {
                await baseline.DrainAsync(warmTemplate, WarmupRows, batch);
            }

            var compiled = System.Runtime.JitInfo.GetCompiledMethodCount() - before;
            if ((compiled < 50 && warm.Elapsed > TimeSpan.FromSeconds(15)) || round == MaxWarmupRounds)
            {
                Console.WriteLine($"warm-up, batch {batch}: {round} round(s) of {WarmupRows:N0} rows per drain, {warm.Elapsed.TotalSeconds:0} s; the last one JIT-compiled {compiled} methods");
                return;
            }
        }
    }

    /// <summary>The application: a host with the interceptor and the dispatcher, started once.</summary>
    private sealed class LibrarySide : IAsyncDisposable
    {
        private readonly ThrivestackStandIn standIn;
        private readonly string path;
        private readonly IHost host;

        private LibrarySide(ThrivestackStandIn standIn, string path, IHost host, Breakdown? breakdown)
        {
            this.standIn = standIn;
            this.path = path;
            this.host = host;
            Breakdown = breakdown;
        }

        public Breakdown? Breakdown { get; }

        public static async Task<LibrarySide> StartAsync(ThrivestackStandIn standIn, string warmTemplate, int batch, bool breakdown)
        {
            var path = SqliteBench.Copy(warmTemplate, "drain-library");
            SqliteBench.Execute(path, $"DELETE FROM {SqliteBench.Outbox};");
            var timing = breakdown ? new Breakdown() : null;
            Breakdown.Current = timing;
            // No polling between runs: a poll could claim rows of the next backlog before its clock starts. The nudge
            // starts each run, as a save would.
            var host = DispatcherHost.Build(
                o => SqliteBench.Configure(o, path, interceptor: false), standIn.Endpoint, standIn.ApiToken, batch, o => o.PollInterval = TimeSpan.FromHours(1));
            Breakdown.Current = null;
            await host.StartAsync();
            return new LibrarySide(standIn, path, host, timing);
        }

        /// <summary>
        /// Appends the template's rows, then times from the moment they are committed until the stand-in has them
        /// all and none is pending. The application nudges its dispatcher as any save would: one more identify
        /// event (<c>EnqueueThrivestackIdentify</c> and <c>SaveChanges</c>), counted in the total.
        /// </summary>
        public async Task<Run> DrainAsync(string template, int rows)
        {
            standIn.Reset();
            SqliteBench.Refill(path, template);
            var cpu = CpuSnapshot.Take();
            var clock = Stopwatch.StartNew();
            using (var scope = host.Services.CreateScope())
            {
                var context = scope.ServiceProvider.GetRequiredService<BenchDbContext>();
                context.EnqueueThrivestackIdentify("bench-nudge");
                await context.SaveChangesAsync();
            }

            await standIn.WaitForEventsAsync(rows + 1, TimeSpan.FromMinutes(5));
            while (SqliteBench.Pending(path) > 0)
            {
                await Task.Delay(1);
            }

            clock.Stop();
            return Run.Of(rows + 1, standIn.AcceptedEventCount, clock.Elapsed, cpu, CpuSnapshot.Take());
        }

        public async ValueTask DisposeAsync()
        {
            await host.StopAsync();
            host.Dispose();
            Breakdown?.Dispose();
            SqliteBench.Delete(path);
        }
    }

    /// <summary>The hand-written loop, with its own database file, connection and HttpClient kept for every run.</summary>
    private sealed class BaselineSide(ThrivestackStandIn standIn, string path, BaselineDrain drain) : IDisposable
    {
        public static BaselineSide Start(ThrivestackStandIn standIn, string warmTemplate)
        {
            var path = SqliteBench.Copy(warmTemplate, "drain-baseline");
            SqliteBench.Execute(path, $"DELETE FROM {SqliteBench.Outbox};");
            return new BaselineSide(standIn, path, new BaselineDrain(path, standIn.Endpoint, standIn.ApiToken));
        }

        public async Task<Run> DrainAsync(string template, int rows, int batch)
        {
            standIn.Reset();
            SqliteBench.Refill(path, template);
            var cpu = CpuSnapshot.Take();
            var clock = Stopwatch.StartNew();
            var sent = await drain.RunAsync(batch);
            clock.Stop();
            var end = CpuSnapshot.Take();
            if (sent != rows || SqliteBench.Pending(path) != 0)
            {
                throw new InvalidOperationException($"The baseline sent {sent} of {rows} rows.");
            }

            return Run.Of(rows, standIn.AcceptedEventCount, clock.Elapsed, cpu, end);
        }

        public void Dispose()
        {
            drain.Dispose();
            SqliteBench.Delete(path);
        }
    }

    internal sealed record Run(double EventsPerSecond, double Seconds, string Cpu)
    {
        public static Run None { get; } = new(double.NaN, double.NaN, "-");

        public static Run Of(int rows, int accepted, TimeSpan elapsed, CpuSnapshot start, CpuSnapshot end)
        {
            if (accepted != rows)
            {
                throw new InvalidOperationException($"The stand-in accepted {accepted} events for {rows} rows.");
            }

            var (machine, _, process) = CpuSnapshot.Between(start, end);
            return new Run(rows / elapsed.TotalSeconds, elapsed.TotalSeconds,
                $"machine {machine:0}%, process {process / elapsed.TotalSeconds / Environment.ProcessorCount * 100:0}%, "
                + $"JIT {end.JitMethods - start.JitMethods} methods {(end.JitTime - start.JitTime).TotalMilliseconds:0} ms, allocated {Machine.Mb(end.Allocated - start.Allocated)}, written {Machine.Mb(end.Written - start.Written)}");
        }
    }
}
