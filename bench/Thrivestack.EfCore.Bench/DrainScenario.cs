using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench;

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

        try
        {
            // JIT (tiered, with dynamic PGO: on 2 busy cores hot code needs ~15 s to reach its final tier), EF's model
            // and query caches, the HTTP connection: paid here until a round compiles almost nothing, not in the measures.
            var warm = Stopwatch.StartNew();
            for (var round = 1; round <= MaxWarmupRounds; round++)
            {
                var before = System.Runtime.JitInfo.GetCompiledMethodCount();
                foreach (var batch in batches)
                {
                    await LibraryAsync(standIn, warmTemplate, WarmupRows, batch);
                    await BaselineAsync(standIn, warmTemplate, WarmupRows, batch);
                }

                var compiled = System.Runtime.JitInfo.GetCompiledMethodCount() - before;
                if (compiled < 50 * batches.Length || round == MaxWarmupRounds)
                {
                    Console.WriteLine($"warm-up: {round} round(s) of {WarmupRows:N0} rows per drain, {warm.Elapsed.TotalSeconds:0} s; the last one JIT-compiled {compiled} methods");
                    break;
                }
            }

            var results = new List<(int Batch, Run Library, Run Baseline)>();
            foreach (var batch in batches)
            {
                for (var round = 1; round <= rounds; round++)
                {
                    using var libraryBreakdown = breakdown ? new Breakdown() : null;
                    Breakdown.Current = libraryBreakdown;
                    var library = only == "baseline" ? Run.None : await LibraryAsync(standIn, template, rows, batch);
                    Breakdown.Current = null;
                    using var baselineBreakdown = breakdown ? new Breakdown() : null;
                    BaselineDrain.Breakdown = baselineBreakdown;
                    var baseline = only == "library" ? Run.None : await BaselineAsync(standIn, template, rows, batch);
                    BaselineDrain.Breakdown = null;
                    results.Add((batch, library, baseline));
                    Console.WriteLine(
                        $"batch {batch,5} round {round}: library {library.EventsPerSecond,9:N0} events/s ({library.Seconds:0.00} s, CPU {library.Cpu}), "
                        + $"baseline {baseline.EventsPerSecond,9:N0} events/s ({baseline.Seconds:0.00} s, CPU {baseline.Cpu}), ratio {library.EventsPerSecond / baseline.EventsPerSecond:0.00}x");
                    if (libraryBreakdown is not null && !double.IsNaN(library.Seconds))
                    {
                        Console.WriteLine($"  library time:{Environment.NewLine}{libraryBreakdown.Report(TimeSpan.FromSeconds(library.Seconds))}");
                    }

                    if (baselineBreakdown is not null && !double.IsNaN(baseline.Seconds))
                    {
                        Console.WriteLine($"  baseline time:{Environment.NewLine}{baselineBreakdown.Report(TimeSpan.FromSeconds(baseline.Seconds))}");
                    }
                }
            }

            Console.WriteLine();
            Console.WriteLine("| batch | library events/s (best) | baseline events/s (best) | ratio (best/best) | target |");
            Console.WriteLine("| --- | --- | --- | --- | --- |");
            foreach (var group in results.GroupBy(r => r.Batch))
            {
                var library = group.Max(r => r.Library.EventsPerSecond);
                var baseline = group.Max(r => r.Baseline.EventsPerSecond);
                Console.WriteLine($"| {group.Key} | {library:N0} | {baseline:N0} | {library / baseline:0.00}x | >= 50,000/s and >= 0.7x |");
            }
        }
        finally
        {
            SqliteBench.Delete(template);
            SqliteBench.Delete(warmTemplate);
        }
    }

    private static async Task<Run> LibraryAsync(ThrivestackStandIn standIn, string template, int rows, int batch)
    {
        var path = SqliteBench.Copy(template, "drain-library");
        try
        {
            standIn.Reset();
            using var host = DispatcherHost.Build(o => SqliteBench.Configure(o, path, interceptor: false), standIn.Endpoint, standIn.ApiToken, batch);
            var cpu = CpuSnapshot.Take();
            var clock = Stopwatch.StartNew();
            await host.StartAsync();
            await standIn.WaitForEventsAsync(rows, TimeSpan.FromMinutes(5));
            while (SqliteBench.Pending(path) > 0)
            {
                await Task.Delay(1);
            }

            clock.Stop();
            var end = CpuSnapshot.Take();
            await host.StopAsync();
            return Run.Of(rows, standIn.AcceptedEventCount, clock.Elapsed, cpu, end);
        }
        finally
        {
            SqliteBench.Delete(path);
        }
    }

    private static async Task<Run> BaselineAsync(ThrivestackStandIn standIn, string template, int rows, int batch)
    {
        var path = SqliteBench.Copy(template, "drain-baseline");
        try
        {
            standIn.Reset();
            var cpu = CpuSnapshot.Take();
            var clock = Stopwatch.StartNew();
            var sent = await BaselineDrain.RunAsync(path, standIn.Endpoint, standIn.ApiToken, batch);
            clock.Stop();
            var end = CpuSnapshot.Take();
            if (sent != rows || SqliteBench.Pending(path) != 0)
            {
                throw new InvalidOperationException($"The baseline sent {sent} of {rows} rows.");
            }

            return Run.Of(rows, standIn.AcceptedEventCount, clock.Elapsed, cpu, end);
        }
        finally
        {
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
                + $"JIT {end.JitMethods - start.JitMethods} methods {(end.JitTime - start.JitTime).TotalMilliseconds:0} ms, allocated {Machine.Mb(end.Allocated - start.Allocated)}");
        }
    }
}
