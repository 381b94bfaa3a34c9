using System.Diagnostics;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// Delivery at network speed (issue 10), SQLite file outbox, the stand-in on 127.0.0.1, side by side in one run:
/// 1. a 100 ms round trip, default options (batch 100, up to 8 requests in flight) against the same with one request
///    at a time, as a share of the network limit (in flight x batch / round trip);
/// 2. a gateway that answers 429 to a 5th concurrent request: a share of its ceiling, and the share of 429 answers;
/// 3. a new process whose host starts on a backlog (loopback, no latency), timed from <c>StartAsync</c>, JIT included.
/// </summary>
internal static class NetworkScenario
{
    private const int WarmupRows = 20_000;

    public static async Task RunAsync(BenchOptions options)
    {
        var sizes = options.Ints("rows", "20000,100000");
        var latency = TimeSpan.FromMilliseconds(options.Int("latency", 100));
        var rounds = options.Int("rounds", 2);
        var batch = options.Int("batch", 100);
        var concurrency = options.Int("max-concurrent", 8);
        var baselineSizes = options.Ints("baseline-rows", "20000,100000").Where(r => r > 0).ToArray();
        var gateway = options.Int("gateway", 4);
        var gatewayRows = options.Int("gateway-rows", 20_000);
        var startRows = options.Int("start-rows", 20_000);
        var startRounds = options.Int("start-rounds", 3);
        var shiftFrom = TimeSpan.FromMilliseconds(options.Int("shift-from", 20));
        var shiftRows = options.Int("shift-rows", 20_000);
        var parts = options.Get("parts", "limit,gateway,start,shift").Split(',');
        var breakdown = options.Get("breakdown", "false") == "true";
        Console.WriteLine($"network: SQLite file, synchronous={SqliteBench.Synchronous}, batch {batch}, latency {latency.TotalMilliseconds:0} ms, {rounds} round(s) per host");
        Console.WriteLine($"machine: {Machine.Describe()}");

        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { RecordEvents = false });
        var templates = new Dictionary<int, string>();
        string Template(int rows)
        {
            if (!templates.TryGetValue(rows, out var path))
            {
                var fill = Stopwatch.StartNew();
                path = templates[rows] = SqliteBench.NewPath($"network-{rows}");
                SqliteBench.Fill(path, rows);
                Console.WriteLine($"filled {rows:N0} rows in {fill.Elapsed.TotalSeconds:0.0} s");
            }

            return path;
        }

        var table = new List<string>();
        try
        {
            if (parts.Contains("start"))
            {
                // First, while this process has never run a dispatcher: the child is a new process anyway.
                for (var round = 1; round <= startRounds; round++)
                {
                    var (seconds, build, timeline) = await HostStartDrain.RunAsync(standIn, Template(startRows), startRows, batch);
                    var rate = startRows / seconds;
                    Console.WriteLine($"host start on {startRows:N0} pending rows, round {round}: {rate,9:N0} events/s ({seconds:0.00} s from StartAsync; host built in {build:0.00} s before it), "
                        + $"first request at +{timeline.FirstRequestSeconds * 1000:0} ms, then {startRows / (seconds - timeline.FirstRequestSeconds):N0} events/s");
                    table.Add($"| host starts on {startRows:N0} pending rows, loopback, new process (JIT included), round {round} | {rate:N0} events/s | first request +{timeline.FirstRequestSeconds * 1000:0} ms; {timeline.Requests:N0} requests | >= 20,000/s | {(rate >= 20_000 ? "yes" : "**no**")} |");
                }
            }

            if (parts.Contains("limit") || parts.Contains("gateway") || parts.Contains("shift"))
            {
                await WarmUpAsync(standIn, Template(WarmupRows), batch, concurrency);
            }

            if (parts.Contains("limit"))
            {
                foreach (var rows in sizes)
                {
                    var ceiling = concurrency * batch / latency.TotalSeconds;
                    var runs = await DrainRoundsAsync(standIn, Template(rows), rows, batch, concurrency, rounds, breakdown, f => f.Latency = latency, latency, $"max {concurrency}, {rows:N0} rows");
                    foreach (var (round, run) in runs.Select((r, i) => (i + 1, r)))
                    {
                        var rate = run.Run.EventsPerSecond;
                        var met = rate >= 0.9 * ceiling && rate >= 5_000;
                        table.Add($"| {latency.TotalMilliseconds:0} ms, MaxConcurrentRequests {concurrency}, {rows:N0} rows, round {round}{(round == 1 ? " (new host)" : "")} | {rate:N0} events/s | **{rate / ceiling:0.00}x** of {ceiling:N0}/s; stand-in peak {run.PeakConcurrentRequests} in flight | >= 0.9x and >= 5,000/s | {(met ? "yes" : "**no**")} |");
                    }
                }

                foreach (var rows in baselineSizes)
                {
                    var ceiling = 1 * batch / latency.TotalSeconds;
                    var runs = await DrainRoundsAsync(standIn, Template(rows), rows, batch, 1, 1, breakdown, f => f.Latency = latency, latency, $"max 1, {rows:N0} rows");
                    var run = runs[0];
                    table.Add($"| baseline: {latency.TotalMilliseconds:0} ms, MaxConcurrentRequests 1, {rows:N0} rows | {run.Run.EventsPerSecond:N0} events/s | {run.Run.EventsPerSecond / ceiling:0.00}x of {ceiling:N0}/s; stand-in peak {run.PeakConcurrentRequests} in flight | (one at a time, as before) | - |");
                }
            }

            if (parts.Contains("gateway"))
            {
                var ceiling = gateway * batch / latency.TotalSeconds;
                var runs = await DrainRoundsAsync(standIn, Template(gatewayRows), gatewayRows, batch, concurrency, rounds, breakdown, f =>
                {
                    f.Latency = latency;
                    f.MaxConcurrentRequests = gateway;
                }, latency, $"gateway {gateway}, {gatewayRows:N0} rows");
                foreach (var (round, run) in runs.Select((r, i) => (i + 1, r)))
                {
                    var timeline = run.Timeline(latency, gateway);
                    var rate = run.Run.EventsPerSecond;
                    var met = rate >= 0.75 * ceiling && timeline.RefusedShare <= 0.10;
                    table.Add($"| gateway: 429 past {gateway} in flight, {latency.TotalMilliseconds:0} ms, MaxConcurrentRequests {concurrency}, {gatewayRows:N0} rows, round {round}{(round == 1 ? " (new host)" : "")} | {rate:N0} events/s | **{rate / ceiling:P1}** of {ceiling:N0}/s; **{timeline.RefusedShare:P1}** answered 429 ({timeline.Refused:N0} of {timeline.Requests:N0}) | >= 75 %, <= 10 % 429 | {(met ? "yes" : "**no**")} |");
                }
            }

            if (parts.Contains("shift"))
            {
                // The network got slower after the dispatcher's first answer (a quiet night, then the day's traffic; a
                // failover to a farther region): its first request is answered after shiftFrom, every later one after latency.
                var ceiling = concurrency * batch / latency.TotalSeconds;
                var runs = await DrainRoundsAsync(standIn, Template(shiftRows), shiftRows, batch, concurrency, 1, breakdown, f => f.Latency = latency, latency,
                    $"max {concurrency}, first answer after {shiftFrom.TotalMilliseconds:0} ms, then {latency.TotalMilliseconds:0} ms, {shiftRows:N0} rows", f => f.Latency = shiftFrom);
                var run = runs[0];
                table.Add($"| round trip grows: first answer after {shiftFrom.TotalMilliseconds:0} ms, then {latency.TotalMilliseconds:0} ms, MaxConcurrentRequests {concurrency}, {shiftRows:N0} rows | {run.Run.EventsPerSecond:N0} events/s | **{run.Run.EventsPerSecond / ceiling:0.00}x** of {ceiling:N0}/s; stand-in peak {run.PeakConcurrentRequests} in flight | (no target; as the 100 ms case) | - |");
            }

            Console.WriteLine();
            Console.WriteLine($"machine at the end: {Machine.Describe()}");
            Console.WriteLine();
            Console.WriteLine("| case | events/s | against the limit | target | met? |");
            Console.WriteLine("| --- | --- | --- | --- | --- |");
            table.ForEach(Console.WriteLine);
        }
        finally
        {
            foreach (var path in templates.Values)
            {
                SqliteBench.Delete(path);
            }
        }
    }

    /// <summary>One new host, <paramref name="rounds"/> timed drains of the same backlog; prints each with its timeline.</summary>
    private static async Task<List<NetworkRun>> DrainRoundsAsync(
        ThrivestackStandIn standIn, string template, int rows, int batch, int concurrency, int rounds, bool breakdown, Action<StandInFaults> faults, TimeSpan latency, string label,
        Action<StandInFaults>? primeFaults = null)
    {
        var runs = new List<NetworkRun>();
        await using var host = await NetworkHost.StartAsync(standIn, template, batch, concurrency, breakdown, primeFaults ?? faults);
        for (var round = 1; round <= rounds; round++)
        {
            var run = await host.DrainAsync(template, rows, faults);
            runs.Add(run);
            var full = Math.Min(concurrency, standIn.Faults.MaxConcurrentRequests ?? int.MaxValue);
            Console.WriteLine($"{label}, round {round}: {run.Run.EventsPerSecond,9:N0} events/s ({run.Run.Seconds:0.00} s, CPU {run.Run.Cpu})");
            Console.WriteLine($"  {run.Timeline(latency, full).Describe(full)}");
            Console.WriteLine($"  {run.Limit}");
            if (host.Breakdown is { } timing)
            {
                // The lanes run side by side: shares are of lane-time (wall time x lanes); "rest" is a lane waiting for a
                // slot, for work, or in the dispatcher's own code.
                Console.WriteLine($"  lane time (wall x {concurrency}):{Environment.NewLine}{timing.Report(TimeSpan.FromSeconds(run.Run.Seconds * concurrency))}");
            }
        }

        return runs;
    }

    /// <summary>JIT of the dispatcher's code, on loopback with a host of its own (so no measured host learns a loopback round trip).</summary>
    private static async Task WarmUpAsync(ThrivestackStandIn standIn, string template, int batch, int concurrency)
    {
        var warm = Stopwatch.StartNew();
        var before = System.Runtime.JitInfo.GetCompiledMethodCount();
        await using (var host = await NetworkHost.StartAsync(standIn, template, batch, concurrency, breakdown: false, _ => { }))
        {
            for (var round = 0; round < 3; round++)
            {
                await host.DrainAsync(template, WarmupRows, _ => { });
            }
        }

        Console.WriteLine($"warm-up: 3 loopback drains of {WarmupRows:N0} rows on a host of its own, {warm.Elapsed.TotalSeconds:0} s, {System.Runtime.JitInfo.GetCompiledMethodCount() - before} methods JIT-compiled");
    }
}
