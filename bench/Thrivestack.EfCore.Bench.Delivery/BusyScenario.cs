using System.Diagnostics;
using System.Globalization;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// A busy app on SQLite (issue 10 item 5): the same app saving single new users as fast as it can, one transaction
/// per save, on a SQLite file in WAL mode, in three variants that alternate round by round (A B C A B C ...), each in a
/// new child process (<see cref="BusyApp"/>) on a new database: A without the library, B with the interceptor and the
/// dispatcher (default options) delivering to the stand-in in this process, C with the interceptor only. Reports saves/s,
/// B/A and C/A per round, save latency, and B's deliveries and backlog.
/// </summary>
internal static class BusyScenario
{
    public static async Task<int> RunAsync(BenchOptions options)
    {
        SqliteBench.Synchronous = options.Get("synchronous", "normal").ToUpperInvariant();
        SqliteBench.BusyTimeout = options.Int("busy-timeout", 5000);
        if (options.Get("child", "false") == "true")
        {
            return await BusyApp.RunAsync(options);
        }

        var seconds = options.Int("seconds", 20);
        var rounds = options.Int("rounds", 3);
        var writers = options.Int("writers", 1);
        var warmup = options.Int("warmup", 15);
        var variants = options.Get("variants", "A,B,C").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var context = options.Get("context", "pool");
        var profile = options.Get("profile", "false");
        var request = options.Get("request", "insert");
        var perf = options.Get("perf", "");
        var environment = new Dictionary<string, string>();
        foreach (var setting in options.Get("child-env", perf.Length > 0 ? "DOTNET_PerfMapEnabled=1" : "").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var split = setting.IndexOf('=', StringComparison.Ordinal);
            environment[setting[..split]] = setting[(split + 1)..];
        }

        Console.WriteLine($"busy: {writers} writer(s) saving one new user per save (a DI scope and a {(context == "pool" ? "pooled" : "scoped")} context each) as fast as they can{(request == "register" ? " (after a query for the email, as a sign-up does)" : "")}, "
            + $"{seconds} s after a {warmup} s warm-up, {rounds} round(s) of {string.Join(' ', variants)}, each in a new process on a new SQLite file "
            + $"(WAL, synchronous={SqliteBench.Synchronous}, busy_timeout={SqliteBench.BusyTimeout} ms on the app's connections){(profile == "true" ? ", profiled" : "")}");
        Console.WriteLine("  A: no library; B: interceptor + dispatcher (default options) delivering to the loopback stand-in; C: interceptor only");
        Console.WriteLine($"machine: {Machine.Describe()}");

        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { RecordEvents = false });
        var results = new List<BusyResult>();
        for (var round = 1; round <= rounds; round++)
        {
            foreach (var variant in variants)
            {
                string[] arguments =
                [
                    "busy", "--child", "true", "--variant", variant, "--endpoint", standIn.Endpoint.ToString(), "--token", standIn.ApiToken,
                    "--writers", Text(writers), "--seconds", Text(seconds), "--warmup", Text(warmup), "--context", context, "--profile", profile, "--request", request,
                    "--synchronous", SqliteBench.Synchronous, "--busy-timeout", Text(SqliteBench.BusyTimeout),
                ];
                var perfData = perf.Length == 0 ? null : Path.Combine(Path.GetFullPath(perf), $"busy-{variant}-{round}.perf.data");
                var result = await RunChildAsync(standIn, variant, round, arguments, environment, perfData, seconds);
                results.Add(result);
                Console.WriteLine(result.Describe());
            }
        }

        Console.WriteLine();
        Console.WriteLine($"machine after: {Machine.Describe()}");
        foreach (var line in BusyResult.Summary(results, variants))
        {
            Console.WriteLine(line);
        }

        return 0;
    }

    private static async Task<BusyResult> RunChildAsync(
        ThrivestackStandIn standIn, string variant, int round, string[] arguments, Dictionary<string, string> environment, string? perfData, int seconds)
    {
        var path = SqliteBench.NewPath("busy-" + variant);
        try
        {
            using (var context = SqliteBench.CreateContext(path, interceptor: false))
            {
                context.Database.EnsureCreated();
            }

            SqliteBench.Execute(path, "PRAGMA journal_mode = WAL;");
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "n/a";
            using var child = ChildProcess.Start([.. arguments, "--path", path], environment);
            try
            {
                Console.WriteLine($"  [child {child.Id}] warm-up: {await ChildProcess.WaitForLineAsync(child, "WARM", TimeSpan.FromMinutes(5))}");
                standIn.Reset();
                using var perf = perfData is null ? null : StartPerf(child.Id, perfData, seconds);
                var cpu = CpuSnapshot.Take();
                await child.StandardInput.WriteLineAsync("go");
                await child.StandardInput.FlushAsync();
                var line = await ChildProcess.WaitForLineAsync(child, "RESULT", TimeSpan.FromMinutes(5));
                var (delivered, requests) = (standIn.AcceptedEventCount, standIn.AcceptedRequestCount);
                var (_, _, standInCpu) = CpuSnapshot.Between(cpu, CpuSnapshot.Take());
                if (perf is not null)
                {
                    await perf.WaitForExitAsync();
                    Console.WriteLine($"  perf: {perfData} (perf report -i {perfData} --no-children --sort dso,symbol)");
                }

                var drained = double.Parse(await ChildProcess.WaitForLineAsync(child, "DRAINED", TimeSpan.FromMinutes(5)), CultureInfo.InvariantCulture);
                await child.WaitForExitAsync();
                return BusyResult.Parse(variant, round, line, delivered, requests, drained, load, standInCpu);
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
            SqliteBench.Delete(path);
        }
    }

    /// <summary>Samples the child's stacks (<c>--perf dir</c>; the child runs with DOTNET_PerfMapEnabled=1 so JIT-compiled frames have names) for the measured seconds.</summary>
    private static Process StartPerf(int pid, string output, int seconds)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        var start = new ProcessStartInfo("perf") { UseShellExecute = false, RedirectStandardError = true };
        foreach (var argument in new[] { "record", "-F", "499", "-g", "-p", pid.ToString(CultureInfo.InvariantCulture), "-o", output, "--", "sleep", seconds.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }

        return Process.Start(start) ?? throw new InvalidOperationException("perf did not start.");
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
