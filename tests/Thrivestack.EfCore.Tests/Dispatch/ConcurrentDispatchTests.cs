using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>Several requests in flight: each user's order kept, the number found at run time, the lease held.</summary>
public sealed class ConcurrentDispatchTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_BacklogWithSlowAnswers_KeepsSeveralRequestsInFlight()
    {
        // Answers slow enough that the network, not the database, is the wait even on a loaded machine: lanes open only then.
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(100);
        await harness.EnqueueAsync(Enumerable.Range(0, 400).Select(i => ($"u{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var probe = new InFlightProbe();

        await StartAsync(probe, o => o.MaxEventsPerBatch = 5);

        await harness.StandIn.WaitForEventsAsync(400, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        Assert.Equal(400, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
        Assert.InRange(probe.Peak, 2, 8);
    }

    [Fact]
    public async Task Dispatcher_MaxConcurrentRequestsOne_SendsOneRequestAtATime()
    {
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(20);
        await harness.EnqueueAsync(Enumerable.Range(0, 100).Select(i => ($"u{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var probe = new InFlightProbe();

        await StartAsync(probe, o =>
        {
            o.MaxEventsPerBatch = 5;
            o.MaxConcurrentRequests = 1;
        });

        await harness.StandIn.WaitForEventsAsync(100, Deadline);
        Assert.Equal(1, probe.Peak);
    }

    [Fact]
    public async Task Dispatcher_ManyUsersEditedWhileBatchesAreInFlightWithRandomDelays_KeepsEachUsersOrder()
    {
        var delays = new RandomDelayHandler(seed: 7, maxMilliseconds: 150);
        var host = harness.BuildHost(
            o => o.MaxEventsPerBatch = 3,
            services: s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => delays));
        await host.StartAsync();

        // 40 users, each edited 6 times in separate commits while earlier events of theirs are in flight.
        const int users = 40;
        const int edits = 6;
        await UserEdits.EnqueueAsync(harness, users, edits, arrivedPerRound: 10, Deadline);

        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.Empty(UserEdits.OutOfOrder(harness.StandIn, users, edits));
        Assert.True(delays.Peak > 1, $"at most {delays.Peak} request in flight");
    }

    [Fact]
    public async Task Dispatcher_AcknowledgementFindsTheRowsLeasedToAnother_CountsThemAsLostNotDelivered()
    {
        await harness.EnqueueAsync([("taken", null)]);
        var thief = new LeaseThiefHandler(harness.Database);
        var host = harness.BuildHost(
            o => o.MaxRequestRetries = 0,
            services: s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => thief));
        using var recorder = new MeterRecorder(host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
        await host.StartAsync();

        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        var line = await WaitForLogAsync(37);
        Assert.Contains("1 of 1 rows to be marked delivered", line.Message);
        Assert.Equal(1, recorder.Sum("thrivestack.identify.events.lease_lost"));
        Assert.Equal(0, recorder.Sum("thrivestack.identify.events.delivered"));
        var row = Assert.Single(await harness.RowsAsync());
        Assert.Equal(OutboxRowState.Pending, row.State);
        Assert.Equal(thief.Lease, row.LeaseId);
    }

    [Fact]
    public async Task Dispatcher_RequestUnansweredNearItsLeasesEnd_IsAbandonedAndItsRowsReleasedUnspent()
    {
        await harness.EnqueueAsync([("slow", null)]);
        var clock = new WatchedClock();
        var hold = new HoldFirstRequestHandler();
        var lease = TimeSpan.FromMinutes(10);
        var host = harness.BuildHost(
            o =>
            {
                o.LeaseDuration = lease;
                o.RequestTimeout = TimeSpan.FromMinutes(8);
                o.MaxRequestRetries = 0;
                o.PollInterval = TimeSpan.FromHours(1);
            },
            clock,
            s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => hold));
        await host.StartAsync();
        await hold.Held.WaitAsync(Deadline);

        // Nine tenths of the lease: the request is abandoned while the row is still ours, and the row goes back unspent.
        clock.Advance(lease * 0.9);

        var line = await WaitForLogAsync(36);
        Assert.Contains("no answer before its lease", line.Message);

        // Released, not charged: claimed again at once and delivered by the next request, with no retry recorded.
        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.Equal("slow", Assert.Single(harness.StandIn.Events).UserId);
        Assert.DoesNotContain(harness.Logs.Lines, l => l.Is(5) || l.Is(6));
    }

    [Fact]
    public async Task Dispatcher_RetryAfterOnABacklog_HoldsEveryLaneUntilThen()
    {
        harness.StandIn.Faults.TooManyRequestsRate = 1;
        harness.StandIn.Faults.RetryAfter = TimeSpan.FromSeconds(30);
        await harness.EnqueueAsync(Enumerable.Range(0, 200).Select(i => ($"r{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var clock = new WatchedClock();
        var stamps = new ClockStampHandler(clock);
        var host = harness.BuildHost(
            o =>
            {
                o.MaxEventsPerBatch = 5;
                o.MaxRequestRetries = 0;
                o.RetryMaxDelay = TimeSpan.FromMinutes(5);
                o.PollInterval = TimeSpan.FromHours(1);
            },
            clock,
            s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => stamps));
        await host.StartAsync();

        // The first request is refused with Retry-After: 30; the lane that waits for its turn must not send meanwhile.
        await clock.WaitForWaitsAsync(1, d => d >= TimeSpan.FromSeconds(30), Deadline);
        harness.StandIn.Faults.TooManyRequestsRate = 0;
        clock.Advance(TimeSpan.FromSeconds(30));

        await harness.StandIn.WaitForEventsAsync(200, Deadline);
        var sent = stamps.Snapshot();
        Assert.All(sent.Skip(1), at => Assert.True(at >= sent[0] + TimeSpan.FromSeconds(30), $"a request was sent {at - sent[0]} after the refusal"));
    }

    [Fact]
    public async Task Dispatcher_CommitSoonAfterRowsWereClaimed_LingersBeforeClaimingButNotAfterAQuietSpell()
    {
        var clock = new WatchedClock();
        var poll = TimeSpan.FromHours(1);
        var host = harness.BuildHost(o => o.PollInterval = poll, clock);
        await host.StartAsync();
        await clock.WaitForWaitsAsync(1, d => d == poll, Deadline);

        // A commit after a quiet spell is claimed at once.
        await DispatchHarness.SaveUsersAsync(host, 1, "first");
        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await clock.WaitForWaitsAsync(2, d => d == poll, Deadline);

        // A commit right after that claim: the dispatcher lingers, so commits close together share one claim.
        await DispatchHarness.SaveUsersAsync(host, 1, "second");
        await clock.WaitForWaitsAsync(1, d => d == OutboxDispatcher<TestDbContext>.Linger, Deadline);
        Assert.Single(harness.StandIn.Events);
        clock.Advance(OutboxDispatcher<TestDbContext>.Linger);
        await harness.StandIn.WaitForEventsAsync(2, Deadline);
        await clock.WaitForWaitsAsync(3, d => d == poll, Deadline);

        // Quiet again: no linger.
        clock.Advance(OutboxDispatcher<TestDbContext>.BusyWindow);
        await DispatchHarness.SaveUsersAsync(host, 1, "third");
        await harness.StandIn.WaitForEventsAsync(3, Deadline);
        await clock.WaitForWaitsAsync(4, d => d == poll, Deadline);
        Assert.Equal(1, clock.CountWaits(d => d == OutboxDispatcher<TestDbContext>.Linger));
    }

    [Fact]
    public async Task Dispatcher_IdleWithEightLanes_PollsWithOneLaneOnly()
    {
        var clock = new WatchedClock();
        var poll = TimeSpan.FromSeconds(1);
        var host = harness.BuildHost(o => o.PollInterval = poll, clock);
        await host.StartAsync();

        // Ten poll intervals: one lane's wait each (lanes that all polled would start up to eight per interval).
        for (var i = 1; i <= 10; i++)
        {
            await clock.WaitForWaitsAsync(i, d => d == poll, Deadline);
            clock.Advance(poll);
        }

        await clock.WaitForWaitsAsync(11, d => d == poll, Deadline);
        Assert.Equal(11, clock.CountWaits(d => d == poll));
    }

    private async Task<IHost> StartAsync(InFlightProbe probe, Action<Thrivestack.EfCore.ThrivestackOptions> configure)
    {
        var host = harness.BuildHost(configure, services: probe.AddTo);
        await host.StartAsync();
        return host;
    }

    private Task<LogCollector.LogLine> WaitForLogAsync(int eventId) => harness.Logs.WaitForAsync(l => l.Is(eventId), Deadline);

    /// <summary>While the request is in flight, another dispatcher takes the rows (their lease ended), as a stalled process would find.</summary>
    private sealed class LeaseThiefHandler(TestDatabase database) : DelegatingHandler
    {
        public Guid Lease { get; } = Guid.NewGuid();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            await using (var context = database.CreateContext())
            {
                await context.Set<OutboxMessage>().ExecuteUpdateAsync(
                    s => s.SetProperty(m => m.LeaseId, Lease).SetProperty(m => m.LeaseOwner, "another").SetProperty(m => m.LeaseExpiresAt, DateTime.UtcNow.AddMinutes(1)),
                    cancellationToken);

                // On SQLite the rows are the outbox-wide lease's: another dispatcher takes that.
                await context.Set<BackfillCheckpoint>().Where(c => c.Name == DispatcherLeaseSql.Name).ExecuteUpdateAsync(
                    s => s.SetProperty(c => c.LockOwner, "another").SetProperty(c => c.LockExpiresAt, DateTime.UtcNow.AddMinutes(1)),
                    cancellationToken);
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>Notes the (fake) clock's time of every request.</summary>
    private sealed class ClockStampHandler(TimeProvider clock) : DelegatingHandler
    {
        private readonly Lock gate = new();
        private readonly List<DateTimeOffset> stamps = [];

        public List<DateTimeOffset> Snapshot()
        {
            lock (gate)
            {
                return [.. stamps];
            }
        }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (gate)
            {
                stamps.Add(clock.GetUtcNow());
            }

            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>Holds the first request until its token is cancelled; passes later ones.</summary>
    private sealed class HoldFirstRequestHandler : DelegatingHandler
    {
        private readonly TaskCompletionSource held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int count;

        public Task Held => held.Task;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref count) == 1)
            {
                held.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }
}
