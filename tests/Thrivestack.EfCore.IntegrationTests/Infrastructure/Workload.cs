using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Testing;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>Outbox workloads: users with numbered events, and checks of what arrived.</summary>
internal static class Workload
{
    /// <summary>Writes <paramref name="users"/> x <paramref name="eventsPerUser"/> rows, interleaved, each with a "seq" trait.</summary>
    public static async Task EnqueueAsync(TestDatabase database, int users, int eventsPerUser, string prefix = "u")
    {
        const int RowsPerSave = 2_000;
        var pending = 0;
        var context = database.CreateContext();
        try
        {
            for (var seq = 1; seq <= eventsPerUser; seq++)
            {
                for (var user = 0; user < users; user++)
                {
                    context.EnqueueThrivestackIdentify($"{prefix}{user}", new Dictionary<string, object?> { ["seq"] = seq });
                    if (++pending == RowsPerSave)
                    {
                        await context.SaveChangesAsync();
                        await context.DisposeAsync();
                        context = database.CreateContext();
                        pending = 0;
                    }
                }
            }

            await context.SaveChangesAsync();
        }
        finally
        {
            await context.DisposeAsync();
        }
    }

    public static async Task<long> PendingAsync(TestDatabase database)
    {
        await using var context = database.CreateContext();
        return await context.Set<Outbox.OutboxMessage>().LongCountAsync(r => r.State == Outbox.OutboxRowState.Pending);
    }

    /// <summary>Waits, polling every 100 ms, until no row is pending; fails once <paramref name="timeout"/> has passed.</summary>
    public static async Task WaitUntilNothingPendingAsync(TestDatabase database, TimeSpan timeout)
    {
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (await PendingAsync(database) > 0)
        {
            Assert.True(deadline.Elapsed < timeout, $"rows were still pending after {timeout.TotalSeconds:N0} s");
            await Task.Delay(100);
        }
    }

    /// <summary>The distinct (user, seq) pairs that arrived, and how many arrived more than once.</summary>
    public static (int Distinct, int Duplicates) Count(ThrivestackStandIn standIn)
    {
        var events = standIn.Events;
        var distinct = events.Select(e => (e.UserId, Seq(e))).Distinct().Count();
        return (distinct, events.Count - distinct);
    }

    /// <summary>
    /// Users whose events arrived out of order: an event first seen after a newer one, or a last arrival that is
    /// not the newest. A re-sent batch after a crash repeats events in order, which this allows.
    /// </summary>
    public static List<string> OutOfOrderUsers(ThrivestackStandIn standIn) =>
        standIn.Events
            .GroupBy(e => e.UserId)
            .Where(g =>
            {
                var arrivals = g.Select(Seq).ToList();
                var firsts = arrivals.Distinct().ToList();
                return !firsts.SequenceEqual(firsts.Order()) || arrivals[^1] != arrivals.Max();
            })
            .Select(g => g.Key)
            .ToList();

    public static int Seq(ReceivedIdentifyEvent e) => e.Traits!.Value.GetProperty("seq").GetInt32();
}
