using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>A dispatcher never starts a send with less than half of its lease left: it gives the rest back and claims again.</summary>
public sealed class LeaseGuardTests : IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_LeaseRunsLowWhileABatchIsInFlight_SendsTheNextBatchOnlyUnderAFreshLease()
    {
        await harness.EnqueueAsync(
        [
            ("first", new Dictionary<string, object?> { ["plan"] = "a" }),
            ("second", new Dictionary<string, object?> { ["plan"] = "b" }),
        ]);

        // One claim holds both rows, sent as two batches one after the other.
        var (clock, gate) = await StartGatedHostAsync(maxEventsPerBatch: 1);

        await gate.FirstArrived.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(gate.Snapshot(), left => Assert.Equal(Lease, left));

        // The first request takes 6 of the lease's 10 minutes: 4 are left, less than half.
        clock.Advance(TimeSpan.FromMinutes(6));
        gate.Release();

        await harness.StandIn.WaitForEventsAsync(2, TimeSpan.FromSeconds(30));
        Assert.Equal(["first", "second"], harness.StandIn.Events.Select(e => e.UserId).Order());
        var leaseLeft = gate.Snapshot();
        Assert.Equal(2, leaseLeft.Count);
        Assert.All(leaseLeft, left => Assert.True(left >= Lease / 2, $"a send started with {left} of its lease left"));
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
    }

    [Fact]
    public async Task Dispatcher_LeaseRunsLowWhileABatchToSplitIsInFlight_SendsTheHalvesOnlyUnderAFreshLease()
    {
        harness.StandIn.Faults.RejectedUserIds.Add("bad");
        await harness.EnqueueAsync(
        [
            ("good", new Dictionary<string, object?> { ["plan"] = "a" }),
            ("bad", new Dictionary<string, object?> { ["plan"] = "b" }),
        ]);

        // One batch of both rows: the 400 it gets is split into two requests of one.
        var (clock, gate) = await StartGatedHostAsync(maxEventsPerBatch: 2);

        await gate.FirstArrived.WaitAsync(TimeSpan.FromSeconds(30));

        // The refused request takes 6 of the lease's 10 minutes: its split must not start with the 4 left.
        clock.Advance(TimeSpan.FromMinutes(6));
        gate.Release();

        await harness.WaitForOutboxAsync(rows => rows.Count == 1 && rows[0].State == OutboxRowState.DeadLettered);
        Assert.Equal("good", Assert.Single(harness.StandIn.Events).UserId);
        Assert.All(gate.Snapshot(), left => Assert.True(left >= Lease / 2, $"a send started with {left} of its lease left"));
    }

    /// <summary>Starts a dispatcher on a fake clock whose first request is held by the returned gate until released.</summary>
    private async Task<(WatchedClock Clock, FirstRequestGate Gate)> StartGatedHostAsync(int maxEventsPerBatch)
    {
        var clock = new WatchedClock();
        var gate = new FirstRequestGate(harness.Database, clock);
        var host = harness.BuildHost(
            o =>
            {
                o.MaxEventsPerBatch = maxEventsPerBatch;
                o.LeaseDuration = Lease;
                o.RequestTimeout = TimeSpan.FromMinutes(8);
                o.MaxRequestRetries = 0;
                o.PollInterval = TimeSpan.FromHours(1);
            },
            clock,
            services => services.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => new GateHandler(gate)));
        await host.StartAsync();
        return (clock, gate);
    }

    /// <summary>Holds the first request until released; for every request notes how much of its rows' lease was left at the send.</summary>
    private sealed class FirstRequestGate(TestDatabase database, TimeProvider clock)
    {
        private readonly TaskCompletionSource arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int requests;

        public Task FirstArrived => arrived.Task;

        private readonly List<TimeSpan> leaseLeftAtSend = [];

        public void Release() => released.TrySetResult();

        /// <summary>For each event sent so far, how much of its row's lease was left when its request started.</summary>
        public List<TimeSpan> Snapshot()
        {
            lock (leaseLeftAtSend)
            {
                return [.. leaseLeftAtSend];
            }
        }

        public async Task BeforeSendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var body = await request.Content!.ReadAsStringAsync(cancellationToken);
            var users = JsonDocument.Parse(body).RootElement.EnumerateArray().Select(e => e.GetProperty("user_id").GetString()!).ToList();
            await using (var context = database.CreateContext())
            {
                var now = clock.GetUtcNow().UtcDateTime;
                // A row's own lease, or on SQLite the outbox-wide lease its dispatcher holds.
                var outboxLease = await context.Set<BackfillCheckpoint>().AsNoTracking()
                    .Where(c => c.Name == DispatcherLeaseSql.Name)
                    .Select(c => c.LockExpiresAt)
                    .FirstOrDefaultAsync(cancellationToken);
                var leases = await context.Set<OutboxMessage>().AsNoTracking()
                    .Where(m => users.Contains(m.UserId))
                    .Select(m => m.LeaseExpiresAt ?? outboxLease)
                    .ToListAsync(cancellationToken);
                lock (leaseLeftAtSend)
                {
                    leaseLeftAtSend.AddRange(leases.Select(end => (end ?? DateTime.MinValue) - now));
                }
            }

            if (Interlocked.Increment(ref requests) == 1)
            {
                arrived.TrySetResult();
                await released.Task.WaitAsync(cancellationToken);
            }
        }
    }

    private sealed class GateHandler(FirstRequestGate gate) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            await gate.BeforeSendAsync(request, cancellationToken);
            return await base.SendAsync(request, cancellationToken);
        }
    }
}
