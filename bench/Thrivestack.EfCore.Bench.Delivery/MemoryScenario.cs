using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// Peak working set while the dispatcher drains N pending rows. This process fills the SQLite file and runs the
/// stand-in; a child process runs only the application host (context + dispatcher) and reports its own VmHWM,
/// so neither the fill nor the stand-in counts. An idle host on an empty outbox is measured first, for scale.
/// </summary>
internal static class MemoryScenario
{
    public const string ChildCommand = "memory-drain";

    public static async Task<int> RunAsync(BenchOptions options)
    {
        var rows = options.Int("rows", 1_000_000);
        var batch = options.Int("batch", 100);
        var gc = options.Get("gc", "workstation");
        Console.WriteLine($"memory: drain {rows:N0} rows in a child process, batch {batch}, {gc} GC, synchronous={SqliteBench.Synchronous}");
        Console.WriteLine($"machine: {Machine.Describe()}");
        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { RecordEvents = false });
        var environment = new Dictionary<string, string> { ["DOTNET_gcServer"] = gc == "server" ? "1" : "0" };
        foreach (var setting in options.Get("child-env", "").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            // Runtime knobs for the child, e.g. DOTNET_GCgen0size=0x2000000 (the GC sizes its gen0 budget from the
            // L3 cache the CPU reports, and a VM may report the host's: 260 MiB here) or DOTNET_TieredPGO=0.
            var (name, value) = (setting[..setting.IndexOf('=', StringComparison.Ordinal)], setting[(setting.IndexOf('=', StringComparison.Ordinal) + 1)..]);
            environment[name] = value;
            Console.WriteLine($"child environment: {name}={value}");
        }

        var empty = SqliteBench.NewPath("memory-empty");
        var full = SqliteBench.NewPath("memory");
        try
        {
            SqliteBench.Fill(empty, 1);
            using (var connection = SqliteBench.Open(empty))
            using (var command = connection.CreateCommand())
            {
                command.CommandText = $"DELETE FROM {SqliteBench.Outbox}";
                command.ExecuteNonQuery();
            }

            var idle = await DrainInChildAsync(empty, standIn, batch, environment, minimumSeconds: 5);
            Console.WriteLine($"idle host (empty outbox, 5 s): peak working set {idle}");

            var fill = Stopwatch.StartNew();
            SqliteBench.Fill(full, rows);
            Console.WriteLine($"filled {rows:N0} rows in {fill.Elapsed.TotalSeconds:0.0} s ({new FileInfo(full).Length / 1024 / 1024} MB file)");
            standIn.Reset();
            var result = await DrainInChildAsync(full, standIn, batch, environment, minimumSeconds: 0);
            Console.WriteLine($"drain of {rows:N0} rows: {result}; stand-in accepted {standIn.AcceptedEventCount:N0} events (target: peak working set < 150 MB)");
            return standIn.AcceptedEventCount == rows ? 0 : 1;
        }
        finally
        {
            SqliteBench.Delete(empty);
            SqliteBench.Delete(full);
        }
    }

    private static async Task<string> DrainInChildAsync(string path, ThrivestackStandIn standIn, int batch, Dictionary<string, string> environment, int minimumSeconds)
    {
        using var child = ChildProcess.Start(
            [ChildCommand, path, standIn.Endpoint.ToString(), standIn.ApiToken, batch.ToString(CultureInfo.InvariantCulture), SqliteBench.Synchronous, minimumSeconds.ToString(CultureInfo.InvariantCulture)],
            environment);
        var result = await ChildProcess.WaitForLineAsync(child, "RESULT", TimeSpan.FromMinutes(10));
        await child.WaitForExitAsync();
        return result;
    }

    /// <summary>The child: the application host alone, sampling its working set until the outbox is empty.</summary>
    public static async Task<int> ChildAsync(string[] args)
    {
        var (path, endpoint, token, batch) = (args[0], new Uri(args[1]), args[2], int.Parse(args[3], CultureInfo.InvariantCulture));
        SqliteBench.Synchronous = args[4];
        var minimum = TimeSpan.FromSeconds(int.Parse(args[5], CultureInfo.InvariantCulture));
        using var host = DispatcherHost.Build(o => SqliteBench.Configure(o, path, interceptor: false), endpoint, token, batch);
        var clock = Stopwatch.StartNew();
        await host.StartAsync();
        var samples = new List<(double Seconds, long Rss, long GcCommitted)>();
        long pending;
        do
        {
            await Task.Delay(250);
            samples.Add((clock.Elapsed.TotalSeconds, Machine.WorkingSet().Rss, GC.GetGCMemoryInfo().TotalCommittedBytes));
            pending = SqliteBench.Pending(path);
        }
        while (pending > 0 || clock.Elapsed < minimum);

        var elapsed = clock.Elapsed;
        var (rss, peak) = Machine.WorkingSet();
        var parts = Machine.ResidentParts();
        var gc = GC.GetGCMemoryInfo();
        await host.StopAsync();
        var curve = string.Join(", ", Enumerable.Range(0, 6).Select(i => samples[Math.Min(samples.Count - 1, i * samples.Count / 5)])
            .Select(s => $"{s.Seconds:0}s {Machine.Mb(s.Rss)} (GC {Machine.Mb(s.GcCommitted)})"));
        Console.WriteLine($"RESULT peak working set (VmHWM) {Machine.Mb(peak)}; at the end {Machine.Mb(rss)} = {parts}; GC committed {Machine.Mb(gc.TotalCommittedBytes)}, "
            + $"managed live {Machine.Mb(GC.GetTotalMemory(false))}, {(GCSettings.IsServerGC ? "server" : "workstation")} GC, collections gen0/1/2 {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}; "
            + $"JIT {System.Runtime.JitInfo.GetCompiledMethodCount()} methods; {elapsed.TotalSeconds:0.0} s; working set over time: {curve}");
        return 0;
    }
}
