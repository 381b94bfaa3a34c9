using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Bench.Capture;

/// <summary>
/// Where the bytes a one-user save allocates for its outbox row go (<c>-- allocations</c>): each piece the interceptor
/// adds, measured alone on a fresh context with one new user after a warm-up, as the thread's allocated bytes (exact).
/// </summary>
internal static class SaveAllocations
{
    public static void Run()
    {
        using var database = new BenchDatabase();
        var pieces = new (string Name, bool Interceptor, Func<BenchDbContext, long> Measure)[]
        {
            ("the context's SaveState (first use)", true, context => Allocated(() => SaveState.Of(context))),
            ("one event's row (scan to OutboxMessage)", true, context =>
            {
                context.ChangeTracker.DetectChanges();
                return Allocated(() => Row(context));
            }),
            ("of which ToMessage (payload and row)", true, context =>
            {
                context.ChangeTracker.DetectChanges();
                var entry = context.ChangeTracker.Entries<BenchUser>().Single();
                var capture = new Interception.Capture(entry, ModelMap.For(context.Model).Users[entry.Metadata], null, null);
                var now = DateTime.UtcNow;
                return Allocated(() => capture.ToMessage(now));
            }),
            ("BeginTransaction + Commit, no interceptor", false, Transaction),
            ("BeginTransaction + Commit, interceptor", true, Transaction),
            ("the outbox INSERT of one row", true, context =>
            {
                var row = Row(context)!;
                using var transaction = context.Database.BeginTransaction();
                var allocated = Allocated(() => OutboxRowWriter.Insert(context, ModelMap.For(context.Model).RequireOutbox(), transaction.GetDbTransaction(), [row]));
                transaction.Rollback();
                return allocated;
            }),
            ("SaveChanges of one user, no interceptor", false, context => Allocated(() => context.SaveChanges())),
            ("SaveChanges of one user, no interceptor, AutoTransactionBehavior.Always", false, context =>
            {
                context.Database.AutoTransactionBehavior = AutoTransactionBehavior.Always;
                return Allocated(() => context.SaveChanges());
            }),
            ("SaveChanges of one user, interceptor", true, context => Allocated(() => context.SaveChanges())),
        };
        Warmup.Run("allocations", () =>
        {
            foreach (var piece in pieces)
            {
                Measure(database, piece.Interceptor, piece.Measure);
            }
        });

        Console.WriteLine("| piece | allocated (median of 100) |");
        Console.WriteLine("| --- | --- |");
        foreach (var (name, interceptor, measure) in pieces)
        {
            var samples = Enumerable.Range(0, 100).Select(_ => Measure(database, interceptor, measure)).Order().ToArray();
            Console.WriteLine($"| {name} | {samples[50]:N0} B |");
        }
    }

    private static long Measure(BenchDatabase database, bool interceptor, Func<BenchDbContext, long> measure)
    {
        long allocated;
        using (var context = database.Create(interceptor))
        {
            context.Users.Add(BenchUsers.New(1, 0)[0]);
            allocated = measure(context);
        }

        using var cleanup = database.Create(interceptor: false);
        cleanup.Database.ExecuteSqlRaw("DELETE FROM \"thrivestack_outbox\"; DELETE FROM \"Users\";");
        return allocated;
    }

    private static long Allocated(Action action)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    private static OutboxMessage? Row(BenchDbContext context)
    {
        var map = ModelMap.For(context.Model);
        var entry = context.ChangeTracker.Entries<BenchUser>().Single();
        return new Interception.Capture(entry, map.Users[entry.Metadata], null, null).ToMessage(DateTime.UtcNow);
    }

    private static long Transaction(BenchDbContext context) => Allocated(() =>
    {
        using var transaction = context.Database.BeginTransaction();
        transaction.Commit();
    });
}
