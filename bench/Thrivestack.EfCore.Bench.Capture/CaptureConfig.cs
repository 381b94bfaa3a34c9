using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;

namespace Thrivestack.EfCore.Bench.Capture;

/// <summary>
/// One SaveChanges per invocation (the context and its entities are prepared in IterationSetup, outside the
/// measure), so BenchmarkDotNet runs one invocation per iteration: many iterations make up for it.
/// </summary>
public sealed class CaptureConfig : ManualConfig
{
    public CaptureConfig()
    {
        AddJob(Job.Default
            .WithWarmupCount(10)
            .WithIterationCount(60)
            .WithInvocationCount(1)
            .WithUnrollFactor(1)
            .WithId("save"));
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(StatisticColumn.Median, StatisticColumn.P95);
        WithOptions(ConfigOptions.DisableLogFile);
    }
}
