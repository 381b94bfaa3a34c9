using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

public sealed class DispatcherShutdownTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task StopAsync_RequestInFlight_AbandonsItWithinTheShutdownTimeoutAndReleasesTheRows()
    {
        // The answer would take 10 minutes and the request may wait 5: only the host's shutdown timeout ends it in time.
        // The timeout is a millisecond, as short as it gets: the proof is that it ends the request at all, not when.
        harness.StandIn.Faults.Latency = TimeSpan.FromMinutes(10);
        await harness.EnqueueAsync(Enumerable.Range(0, 3).Select(i => ($"s{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var probe = new InFlightProbe();
        var host = harness.BuildHost(
            o =>
            {
                o.RequestTimeout = TimeSpan.FromMinutes(5);
                o.LeaseDuration = TimeSpan.FromMinutes(10);
                o.MaxRequestRetries = 0;
            },
            services: services =>
            {
                services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(1));
                probe.AddTo(services);
            });
        await host.StartAsync();
        await probe.FirstSent.WaitAsync(Deadline);

        await host.StopAsync();

        // StopAsync gives up waiting after the shutdown timeout; the dispatcher itself must have finished by then.
        var dispatcher = DispatchHarness.Dispatcher(host);
        Assert.True(dispatcher.ExecuteTask!.IsCompletedSuccessfully, $"dispatcher task: {dispatcher.ExecuteTask.Status}");
        Assert.Equal(0, probe.InFlight);
        Assert.Contains(harness.Logs.Lines, l => l.Is(2));
        Assert.All(await harness.RowsAsync(), r =>
        {
            Assert.Equal(OutboxRowState.Pending, r.State);
            Assert.Null(r.LeaseId);
            Assert.Null(r.LeaseExpiresAt);
            Assert.Equal(0, r.Attempts);
        });
        Assert.Equal(0, harness.StandIn.AcceptedEventCount);
    }

    [Fact]
    public async Task StopAsync_RequestInFlight_RecordsItsAnswerAndNothingIsSentAgain()
    {
        await using var gateway = await LoopbackGateway.StartAsync(harness.StandIn.Endpoint);
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gateway.Hold = answer.Task;
        var users = new[] { "f1", "f2", "f3" };
        await harness.EnqueueAsync(users.Select(u => (u, (IReadOnlyDictionary<string, object?>?)null)));
        var first = await harness.StartHostAsync(o => o.Endpoint = gateway.Endpoint);
        await gateway.Holding.Task.WaitAsync(Deadline);

        // The stop is requested (the stopping token is cancelled synchronously) while ThriveStack's answer is on its way.
        var dispatcher = DispatchHarness.Dispatcher(first);
        var stopping = dispatcher.StopAsync(CancellationToken.None);
        answer.SetResult();
        await stopping.WaitAsync(Deadline);

        Assert.True(dispatcher.ExecuteTask!.IsCompletedSuccessfully, $"dispatcher task: {dispatcher.ExecuteTask.Status}");
        Assert.Empty(await harness.RowsAsync());
        Assert.Equal(1, gateway.Requests);

        // A second dispatcher finds nothing of the first batch to send: a marker written after it is all that arrives.
        gateway.Hold = null;
        var second = await harness.StartHostAsync(o => o.Endpoint = gateway.Endpoint);
        await DispatchHarness.SaveUsersAsync(second, 1, "marker");
        await harness.StandIn.WaitForEventsAsync(4, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        Assert.All(users, u => Assert.Single(harness.StandIn.EventsFor(u)));
        Assert.Equal(2, gateway.Requests);
    }

    [Fact]
    public async Task StopAsync_MidBatch_NextHostDeliversEveryEvent()
    {
        // The answer would take 10 minutes, and the first host's lease (10 minutes, its per-send deadline at 9) and
        // request timeout (5) outlast the test: only the abort at the end of the shutdown timeout gives its rows back.
        harness.StandIn.Faults.Latency = TimeSpan.FromMinutes(10);
        var users = Enumerable.Range(0, 20).Select(i => $"m{i:D2}").ToList();
        await harness.EnqueueAsync(users.Select(u => (u, (IReadOnlyDictionary<string, object?>?)null)));
        var probe = new InFlightProbe();
        var first = harness.BuildHost(
            o =>
            {
                o.MaxEventsPerBatch = 5;
                o.LeaseDuration = TimeSpan.FromMinutes(10);
                o.RequestTimeout = TimeSpan.FromMinutes(5);
                o.MaxRequestRetries = 0;
            },
            services: probe.AddTo);
        await first.StartAsync();
        await probe.FirstSent.WaitAsync(Deadline);

        // A shutdown timeout shorter than the held answer (here one already over): the request in flight is aborted and
        // its rows go back.
        await first.StopAsync(new CancellationToken(canceled: true));

        harness.StandIn.Faults.Latency = TimeSpan.Zero;
        await harness.StartHostAsync(o => o.MaxEventsPerBatch = 5);

        await harness.StandIn.WaitUntilAsync(s => users.All(u => s.EventsFor(u).Count > 0), Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.Equal(0, probe.InFlight);

        // At-least-once: only the batch that was in flight (the first five rows, claimed in id order) may arrive twice.
        var twice = harness.StandIn.Events.GroupBy(e => e.UserId).Where(g => g.Count() > 1).Select(g => g.Key);
        Assert.All(twice, u => Assert.Contains(u, users.Take(5)));
    }

    [Fact]
    public async Task Dispatcher_RowsLeasedByAKilledHost_AreSentOnceTheLeaseEnds()
    {
        var poll = TimeSpan.FromMilliseconds(200);
        var clock = new WatchedClock();
        await harness.EnqueueAsync([("k1", null), ("k2", null), ("k3", null)]);

        // The dead lease ends between the fifth and the sixth poll of the fake clock.
        var leaseEnds = clock.GetUtcNow().UtcDateTime + (5 * poll) - TimeSpan.FromMilliseconds(100);
        await harness.LeaseToDeadDispatcherAsync(leaseEnds);

        await harness.StartHostAsync(o => o.PollInterval = poll, clock);

        // Never taken from under the live lease: five claims ran before it ended, and none of them sent anything.
        for (var claim = 1; claim <= 5; claim++)
        {
            await clock.WaitForWaitsAsync(claim, due => due == poll, Deadline);
            Assert.True(clock.GetUtcNow().UtcDateTime < leaseEnds);
            Assert.Empty(harness.StandIn.Requests);
            Assert.All(await harness.RowsAsync(), r => Assert.Equal("killed-host", r.LeaseOwner));
            clock.Advance(poll);
        }

        await harness.StandIn.WaitForEventsAsync(3, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0);
        Assert.Equal(3, harness.StandIn.AcceptedEventCount);
    }
}
