using BenchmarkDotNet.Running;
using Thrivestack.EfCore.Benchmarks;

// dotnet run -c Release --project bench/Thrivestack.EfCore.Benchmarks -- --filter '*'   (BenchmarkDotNet)
// dotnet run -c Release --project bench/Thrivestack.EfCore.Benchmarks -- paired [scale]  (paired samples, CPU time)
if (args.FirstOrDefault() == "paired")
{
    PairedCapture.Run(args);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(InsertSaveBenchmarks).Assembly).Run(args);
