using System.Globalization;
using Thrivestack.EfCore.Bench.Delivery;

// One command per scenario, e.g.: dotnet run -c Release --project bench/Thrivestack.EfCore.Bench.Delivery -- drain
// See docs/benchmarks.md for what each measures and the targets.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string[] positional = ["fill", MemoryScenario.ChildCommand, PgScenario.ChildCommand, HostStartDrain.ChildCommand];
var options = positional.Contains(args.FirstOrDefault()) ? BenchOptions.Parse([]) : BenchOptions.Parse(args.Skip(1).ToArray());
SqliteBench.Synchronous = options.Get("synchronous", "full").ToUpperInvariant();
SqliteBench.BusyTimeout = options.Int("busy-timeout", 0);
DispatcherHost.LogSql = options.Get("sql-log", "false") == "true";
switch (args.FirstOrDefault())
{
    case "drain":
        await DrainScenario.RunAsync(options);
        return 0;
    case "latency":
        await LatencyScenario.RunAsync(options);
        return 0;
    case "memory":
        return await MemoryScenario.RunAsync(options);
    case MemoryScenario.ChildCommand:
        return await MemoryScenario.ChildAsync(args[1..]);
    case "fill":
        // A filled SQLite outbox to inspect by hand (sqlite3, EXPLAIN QUERY PLAN): fill <path> [--rows N]
        SqliteBench.Fill(Path.GetFullPath(args[1]), BenchOptions.Parse(args.Skip(2).ToArray()).Int("rows", 100_000));
        return 0;
    case "pg":
        return await PgScenario.RunAsync(options);
    case PgScenario.ChildCommand:
        return await PgScenario.ChildAsync(args[1..]);
    case "network":
        await NetworkScenario.RunAsync(options);
        return 0;
    case HostStartDrain.ChildCommand:
        return await HostStartDrain.ChildAsync(args[1..]);
    case "backfill":
        return await BackfillScenario.RunAsync(options);
    case "busy":
        return await BusyScenario.RunAsync(options);
    default:
        Console.Error.WriteLine("""
            usage: Thrivestack.EfCore.Bench.Delivery <scenario> [--option value ...]
              drain    [--rows 100000] [--batch 100,1000] [--rounds 2] [--synchronous full|normal]
              latency  [--rate 100] [--seconds 20] [--synchronous full|normal]
              memory   [--rows 1000000] [--batch 100] [--gc workstation|server] [--child-env DOTNET_GCgen0size=0x2000000,...] [--synchronous full|normal]
              pg       [--rows 100000] [--batch 100] [--dispatchers 1,2,4]
              network  [--rows 20000,100000] [--latency 100] [--rounds 2] [--max-concurrent 8] [--baseline-rows 20000,100000] [--gateway 4] [--gateway-rows 20000]
                       [--start-rows 20000] [--start-rounds 3] [--shift-from 20] [--shift-rows 20000] [--parts limit,gateway,start,shift] [--breakdown true]
              backfill [--users 1000000] [--provider sqlite|pg] [--rate 50] [--chunk 500] [--max-pending 10000] [--poll-ms 1000] [--child-env DOTNET_GCHeapHardLimit=0x6400000|none] [--outbox-storage autovacuum_vacuum_cost_delay=0] (pg)
              busy     [--seconds 20] [--rounds 3] [--writers 1] [--warmup 15] [--variants A,B,C] [--context pool|scoped] [--synchronous normal|full] [--busy-timeout 5000] [--profile true] [--request insert|register] [--perf <dir>]
            """);
        return 2;
}
