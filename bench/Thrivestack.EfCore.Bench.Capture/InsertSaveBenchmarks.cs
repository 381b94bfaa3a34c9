using BenchmarkDotNet.Attributes;
using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Bench.Capture;

/// <summary>
/// SaveChanges of N new users. Baseline: the application adds the equivalent outbox rows itself (same JSON,
/// same columns, built in the measured call) and saves without the interceptor. Every invocation saves
/// <see cref="SavesPerInvocation"/> fresh contexts one after another, each with its own fresh users (a server's
/// steady state: one save after another, caches warm), and reports the time per save; IterationSetup prepares the
/// contexts outside the measure, IterationCleanup deletes the rows and checkpoints the WAL, so the database does not
/// grow and no save pays for the cleanup's pages. (One save per iteration measured a cold save after BenchmarkDotNet's
/// forced collection and setup: four times the paired runner's time at one user, and a wide spread at 1,000.)
/// </summary>
[MemoryDiagnoser]
[Config(typeof(CaptureConfig))]
public class InsertSaveBenchmarks
{
    private BenchDatabase database = null!;
    /// <summary>Saves per invocation: enough for warm caches at one user, few enough to keep 1,000-user runs short.</summary>
    private const int SavesPerInvocation = 16;

    private readonly BenchDbContext[] contexts = new BenchDbContext[SavesPerInvocation];
    private readonly List<BenchUser>[] users = new List<BenchUser>[SavesPerInvocation];
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
        foreach (var context in contexts)
        {
            context.Dispose();
        }

        Clear();
    }

    /// <summary>The application writes the identify rows itself: what the interceptor automates.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = SavesPerInvocation)]
    public int AppWritesOutbox()
    {
        var saved = 0;
        for (var i = 0; i < SavesPerInvocation; i++)
        {
            var now = DateTime.UtcNow;
            foreach (var user in users[i])
            {
                contexts[i].Add(HandWrittenOutbox.For(user, now));
            }

            saved += contexts[i].SaveChanges();
        }

        return saved;
    }

    [Benchmark(OperationsPerInvoke = SavesPerInvocation)]
    public int Interceptor() => SaveAll();

    /// <summary>For scale only: the same save with no identify rows at all.</summary>
    [Benchmark(OperationsPerInvoke = SavesPerInvocation)]
    public int NoOutbox() => SaveAll();

    private int SaveAll()
    {
        var saved = 0;
        foreach (var context in contexts)
        {
            saved += context.SaveChanges();
        }

        return saved;
    }

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
        for (var i = 0; i < SavesPerInvocation; i++)
        {
            contexts[i] = database.Create(interceptor);
            users[i] = BenchUsers.New(Count, seed++);
            contexts[i].Users.AddRange(users[i]);
        }
    }

    private void Clear()
    {
        using var cleanup = database.Create(interceptor: false);
        cleanup.Database.ExecuteSqlRaw("DELETE FROM \"thrivestack_outbox\"; DELETE FROM \"Users\";");
        if (BenchDatabase.PostgresServer is null)
        {
            cleanup.Database.ExecuteSqlRaw("PRAGMA wal_checkpoint(TRUNCATE);");
        }
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
