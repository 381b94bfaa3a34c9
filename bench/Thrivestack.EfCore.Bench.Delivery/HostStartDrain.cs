using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// A host that starts on a backlog: a new process (nothing JIT-compiled, no EF model or query built) builds the
/// application host with default options on a SQLite file of N pending rows and starts it; the clock runs from
/// <c>StartAsync</c> until the stand-in (in this process) has every event and none is pending.
/// </summary>
internal static class HostStartDrain
{
    public const string ChildCommand = "network-start";

    /// <summary>One drain in a fresh child process; the timestamps are <see cref="Stopwatch"/> ticks (monotonic, machine-wide on Linux).</summary>
    public static async Task<(double Seconds, double BuildSeconds, RequestTimeline Timeline)> RunAsync(ThrivestackStandIn standIn, string template, int rows, int batch)
    {
        var path = SqliteBench.Copy(template, "network-start");
        try
        {
            standIn.Reset();
            using var child = ChildProcess.Start(
                [ChildCommand, path, standIn.Endpoint.ToString(), standIn.ApiToken, batch.ToString(CultureInfo.InvariantCulture), SqliteBench.Synchronous]);
            var starting = (await ChildProcess.WaitForLineAsync(child, "STARTING", TimeSpan.FromMinutes(2))).Split(' ');
            var (startTicks, startUtc, buildSeconds) = (long.Parse(starting[0], CultureInfo.InvariantCulture),
                new DateTimeOffset(long.Parse(starting[1], CultureInfo.InvariantCulture), TimeSpan.Zero), double.Parse(starting[2], CultureInfo.InvariantCulture));
            await standIn.WaitForEventsAsync(rows, TimeSpan.FromMinutes(10));
            while (SqliteBench.Pending(path) > 0)
            {
                await Task.Delay(1);
            }

            var elapsed = Stopwatch.GetElapsedTime(startTicks);
            if (standIn.AcceptedEventCount != rows)
            {
                throw new InvalidOperationException($"The stand-in accepted {standIn.AcceptedEventCount} events for {rows} rows.");
            }

            await child.StandardInput.WriteLineAsync("stop");
            await ChildProcess.WaitForLineAsync(child, "STOPPED", TimeSpan.FromMinutes(1));
            await child.WaitForExitAsync();
            return (elapsed.TotalSeconds, buildSeconds, RequestTimeline.Of(standIn.Requests, startUtc, startUtc + elapsed, TimeSpan.Zero, int.MaxValue));
        }
        finally
        {
            SqliteBench.Delete(path);
        }
    }

    /// <summary>The child: builds the host, says when <c>StartAsync</c> begins, runs until told to stop.</summary>
    public static async Task<int> ChildAsync(string[] args)
    {
        var (path, endpoint, token, batch) = (args[0], new Uri(args[1]), args[2], int.Parse(args[3], CultureInfo.InvariantCulture));
        SqliteBench.Synchronous = args[4];
        // When each kind of statement first ran after StartAsync began (its end, in ms) and how long it took, with the JIT
        // work done by then: what a new process does before its first request leaves.
        var firsts = new ConcurrentDictionary<string, string>();
        var ticks = 0L;
        var timer = new SqliteStatementTimer((kind, duration) => firsts.TryAdd(kind, FormattableString.Invariant(
            $"{kind} +{Stopwatch.GetElapsedTime(ticks).TotalMilliseconds:0} ms ({duration * 1000.0 / Stopwatch.Frequency:0.0} ms; JIT by then {System.Runtime.JitInfo.GetCompiledMethodCount()} methods, {System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds:0} ms)")));
        var build = Stopwatch.StartNew();
        using var host = DispatcherHost.Build(o => SqliteBench.Configure(o, path, interceptor: false).AddInterceptors(timer), endpoint, token, batch);
        build.Stop();
        var jitBefore = (System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime());
        ticks = Stopwatch.GetTimestamp();
        var utc = TimeProvider.System.GetUtcNow();
        await host.StartAsync();
        Console.WriteLine(FormattableString.Invariant($"STARTING {ticks} {utc.UtcTicks} {build.Elapsed.TotalSeconds}"));
        await Console.In.ReadLineAsync();
        await host.StopAsync();
        Console.WriteLine(FormattableString.Invariant(
            $"child: JIT at StartAsync {jitBefore.Item1} methods {jitBefore.Item2.TotalMilliseconds:0} ms, at the end {System.Runtime.JitInfo.GetCompiledMethodCount()} methods {System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds:0} ms; first statements: {string.Join("; ", firsts.Values.Order())}"));
        Console.WriteLine("STOPPED");
        return 0;
    }
}
