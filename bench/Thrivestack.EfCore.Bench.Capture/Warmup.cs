using System.Diagnostics;

namespace Thrivestack.EfCore.Bench.Capture;

/// <summary>
/// Runs an operation until the JIT has settled. Tiered compilation with dynamic PGO takes 10-15 s of steady calls
/// on this 2-core machine before a save runs its final code (a 1-user save goes from ~3 ms to ~0.3 ms meanwhile), far
/// longer than BenchmarkDotNet's warm-up iterations last when each invocation is one save. Measuring before that
/// measures the JIT, and penalizes the side with more code.
/// </summary>
internal static class Warmup
{
    public static void Run(string what, Action operation, double minimumSeconds = 15, double maximumSeconds = 60)
    {
        var clock = Stopwatch.StartNew();
        var lastChange = clock.Elapsed;
        var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        var calls = 0;
        while (clock.Elapsed.TotalSeconds < maximumSeconds)
        {
            operation();
            calls++;
            var now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (now != compiled)
            {
                compiled = now;
                lastChange = clock.Elapsed;
            }

            // Settled: the minimum time has passed and nothing was compiled for the last 3 seconds.
            if (clock.Elapsed.TotalSeconds >= minimumSeconds && (clock.Elapsed - lastChange).TotalSeconds >= 3)
            {
                break;
            }
        }

        Console.WriteLine($"// warm-up of {what}: {calls} calls in {clock.Elapsed.TotalSeconds:0.0} s, {compiled} methods compiled, last one {(clock.Elapsed - lastChange).TotalSeconds:0.0} s before the end");
    }
}
