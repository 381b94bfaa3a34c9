using BenchmarkDotNet.Attributes;
using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Bench.Capture;

/// <summary>
/// SaveChanges of 1,000 tracked users whose changes touch no mapped trait (a login counter, a last-seen time):
/// no identify event may be written. Baseline: the same save without the interceptor.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(CaptureConfig))]
public class UpdateSaveBenchmarks
{
    private const int Count = 1000;

    private BenchDatabase database = null!;
    private BenchDbContext context = null!;

    [GlobalSetup(Target = nameof(NoOutbox))]
    public void GlobalSetupWithout() => GlobalSetup(nameof(NoOutbox), false);

    [GlobalSetup(Target = nameof(WithInterceptor))]
    public void GlobalSetupWith() => GlobalSetup(nameof(WithInterceptor), true);

    private void GlobalSetup(string name, bool interceptor)
    {
        database = new BenchDatabase();
        using (var seed = database.Create(interceptor: false))
        {
            seed.Users.AddRange(BenchUsers.New(Count, 0));
            seed.SaveChanges();
        }

        Verify();
        Warmup.Run(name, () =>
        {
            Prepare(interceptor);
            context.SaveChanges();
            IterationCleanup();
        });
    }

    [GlobalCleanup]
    public void GlobalCleanup() => database.Dispose();

    [IterationSetup(Target = nameof(NoOutbox))]
    public void SetupWithoutInterceptor() => Prepare(interceptor: false);

    [IterationSetup(Target = nameof(WithInterceptor))]
    public void SetupWithInterceptor() => Prepare(interceptor: true);

    [IterationCleanup]
    public void IterationCleanup() => context.Dispose();

    [Benchmark(Baseline = true)]
    public int NoOutbox() => context.SaveChanges();

    [Benchmark]
    public int WithInterceptor() => context.SaveChanges();

    private void Prepare(bool interceptor)
    {
        context = database.Create(interceptor);
        var now = DateTime.UtcNow;
        foreach (var user in context.Users.ToList())
        {
            user.LoginCount++;
            user.LastSeenAt = now;
        }
    }

    private void Verify()
    {
        Prepare(interceptor: true);
        var saved = context.SaveChanges();
        context.Dispose();
        using var check = database.Create(interceptor: false);
        var rows = check.Set<OutboxMessage>().Count();
        if (saved != Count || rows != 0)
        {
            throw new InvalidOperationException($"Expected {Count} updates and no identify rows, got {saved} updates and {rows} rows.");
        }
    }
}
