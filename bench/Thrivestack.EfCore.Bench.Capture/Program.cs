using BenchmarkDotNet.Running;
using Thrivestack.EfCore.Bench.Capture;

// dotnet run -c Release --project bench/Thrivestack.EfCore.Bench.Capture -- --filter '*'   (BenchmarkDotNet)
// dotnet run -c Release --project bench/Thrivestack.EfCore.Bench.Capture -- paired [scale]  (paired samples, CPU time)
// dotnet run -c Release --project bench/Thrivestack.EfCore.Bench.Capture -- allocations      (where a 1-user save's outbox bytes go)
// dotnet run -c Release --project bench/Thrivestack.EfCore.Bench.Capture -- indexes [rounds] (each outbox index's cost on insert and claim)
if (args.FirstOrDefault() == "indexes")
{
    IndexCost.Run(args);
    return;
}

if (args.FirstOrDefault() == "allocations")
{
    SaveAllocations.Run();
    return;
}

if (args.FirstOrDefault() == "paired")
{
    PairedCapture.Run(args);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(InsertSaveBenchmarks).Assembly).Run(args);
