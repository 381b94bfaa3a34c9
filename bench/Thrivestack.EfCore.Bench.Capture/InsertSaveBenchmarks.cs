using BenchmarkDotNet.Attributes;
using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Bench.Capture;

/// <summary>
/// SaveChanges of N new users. Baseline: the application adds the equivalent outbox rows itself (same JSON,
/// same columns, built in the measured call) and saves without the interceptor. Every iteration inserts fresh
/// users into a fresh context; IterationCleanup deletes them, so the database does not grow.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(CaptureConfig))]
public class InsertSaveBenchmarks
{
    private BenchDatabase database = null!;
    private BenchDbContext context = null!;
    private List<BenchUser> users = null!;
    private int seed;

    [Params(1, 100, 1000)]
    public int Count { get; set; }

    [GlobalSetup(Target = nameof(AppWritesOutbox))]
    public void GlobalSetupBaseline() => GlobalSetup(nameof(AppWritesOutbox), false, AppWritesOutbox);

    [GlobalSetup(Target = nameof(Interceptor))]
    public void GlobalSetupInterceptor() => GlobalSetup(nameof(Interceptor), true, Interceptor);

    [GlobalSetup(Target = nameof(NoOutbox))]
    public void GlobalSetupNoOutbox() => GlobalSetup(nameof(NoOutbox), false, NoOutbox);

    [GlobalCleanup]
    public void GlobalCleanup() => database.Dispose();

    [IterationSetup(Targets = [nameof(AppWritesOutbox), nameof(NoOutbox)])]
    public void SetupWithoutInterceptor() => Prepare(interceptor: false);

    [IterationSetup(Target = nameof(Interceptor))]
    public void SetupWithInterceptor() => Prepare(interceptor: true);

    [IterationCleanup]
    public void IterationCleanup()
    {
        context.Dispose();
        Clear();
    }

    /// <summary>The application writes the identify rows itself: what the interceptor automates.</summary>
    [Benchmark(Baseline = true)]
    public int AppWritesOutbox()
    {
        var now = DateTime.UtcNow;
        foreach (var user in users)
        {
            context.Add(HandWrittenOutbox.For(user, now));
        }

        return context.SaveChanges();
    }

    [Benchmark]
    public int Interceptor() => context.SaveChanges();

    /// <summary>For scale only: the same save with no identify rows at all.</summary>
    [Benchmark]
    public int NoOutbox() => context.SaveChanges();

    private void GlobalSetup(string name, bool interceptor, Func<int> benchmark)
    {
        database = new BenchDatabase();
        Verify();
        Warmup.Run($"{name}, {Count} users", () =>
        {
            Prepare(interceptor);
            benchmark();
            IterationCleanup();
        });
    }

    private void Prepare(bool interceptor)
    {
        context = database.Create(interceptor);
        users = BenchUsers.New(Count, seed++);
        context.Users.AddRange(users);
    }

    private void Clear()
    {
        using var cleanup = database.Create(interceptor: false);
        cleanup.Database.ExecuteSqlRaw("DELETE FROM \"thrivestack_outbox\"; DELETE FROM \"Users\";");
    }

    // The baseline must write exactly what the interceptor writes, or the ratio means nothing.
    private void Verify()
    {
        var user = BenchUsers.New(1, -1)[0];
        using (var capture = database.Create(interceptor: true))
        {
            capture.Users.Add(user);
            capture.SaveChanges();
        }

        using (var check = database.Create(interceptor: false))
        {
            var row = check.Set<OutboxMessage>().AsNoTracking().Single();
            var expected = HandWrittenOutbox.For(user, row.CreatedAt);
            if (row.Payload != expected.Payload || row.PayloadBytes != expected.PayloadBytes || row.Kind != expected.Kind || row.UserId != expected.UserId)
            {
                throw new InvalidOperationException($"The hand-written row differs from the captured one:{Environment.NewLine}{row.Payload}{Environment.NewLine}{expected.Payload}");
            }
        }

        Clear();
    }
}
