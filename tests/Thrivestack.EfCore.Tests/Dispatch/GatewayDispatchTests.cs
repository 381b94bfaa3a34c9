using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// A gateway that refuses requests past a concurrency ceiling: the dispatcher settles under it, hands each refusal to the
/// limiter uncharged, and grows again once the ceiling is lifted. Apart from <see cref="ConcurrentDispatchTests"/> so the
/// two classes run side by side (each takes seconds of 100 ms answers).
/// </summary>
public sealed class GatewayDispatchTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_GatewayRefusesAFifthConcurrentRequest_SettlesUnderItAndGrowsAgainOnceItIsLifted()
    {
        var gateway = new GatewayHandler(limit: 4);
        // Answers slow enough that the network, not the database, is the wait even on a loaded machine: lanes open only then.
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(100);
        await harness.EnqueueAsync(Enumerable.Range(0, 400).Select(i => ($"g{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var recorder = default(MeterRecorder);
        var host = harness.BuildHost(
            o => o.MaxEventsPerBatch = 5,
            services: s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => gateway));
        recorder = new MeterRecorder(host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
        await host.StartAsync();

        await harness.StandIn.WaitForEventsAsync(400, Deadline);
        Assert.Equal(400, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
        recorder.RecordObservableInstruments();
        // The limit counts lanes from claim to acknowledgement, a little more than the requests on the wire.
        Assert.InRange(recorder.For("thrivestack.identify.requests.limit")[^1].Value, 1, 8);
        Assert.True(gateway.Refused * 5 < gateway.Passed, $"{gateway.Refused} refused, {gateway.Passed} passed");

        // Lifted: the dispatcher probes above four and grows past it.
        gateway.Limit = int.MaxValue;
        await harness.EnqueueAsync(Enumerable.Range(0, 600).Select(i => ($"h{i}", (IReadOnlyDictionary<string, object?>?)null)));
        await harness.StandIn.WaitForEventsAsync(1000, Deadline);
        Assert.True(gateway.PeakAfterLift > 4, $"peak after the lift: {gateway.PeakAfterLift}");
        recorder.Dispose();
    }

    [Fact]
    public async Task Dispatcher_GatewayRefusesWhileOthersAreInFlight_SendsThoseRowsAgainUnchargedWithoutQuickRetries()
    {
        var gateway = new GatewayHandler(limit: 2);
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(100);
        await harness.EnqueueAsync(Enumerable.Range(0, 300).Select(i => ($"q{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var host = harness.BuildHost(
            o =>
            {
                o.MaxEventsPerBatch = 5;
                o.MaxRequestRetries = 2;
            },
            services: s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => gateway));
        using var recorder = new MeterRecorder(host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
        await host.StartAsync();

        await harness.StandIn.WaitForEventsAsync(300, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.True(gateway.Refused > 0, "the gateway never refused: the test proves nothing");

        // Each refusal was handed to the limiter (one log line each), none retried in place, none charged to a row.
        Assert.Equal(gateway.Refused, harness.Logs.Lines.Count(l => l.Is(35)));
        Assert.Equal(0, recorder.Sum("thrivestack.identify.events.retried"));
        Assert.Equal(300, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
    }

    /// <summary>A gateway in front of ThriveStack: a request beyond <see cref="Limit"/> in flight is answered 429 without Retry-After.</summary>
    private sealed class GatewayHandler(int limit) : DelegatingHandler
    {
        private readonly Lock gate = new();
        private int inFlight;

        public int Limit { get; set; } = limit;

        public int Refused { get; private set; }

        public int Passed { get; private set; }

        public int PeakAfterLift { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (gate)
            {
                if (inFlight >= Limit)
                {
                    Refused++;
                    return new HttpResponseMessage(HttpStatusCode.TooManyRequests) { Content = new StringContent("""{"error":"Rate Limit Exceeded"}""") };
                }

                inFlight++;
                Passed++;
                if (Limit == int.MaxValue)
                {
                    PeakAfterLift = Math.Max(PeakAfterLift, inFlight);
                }
            }

            try
            {
                return await base.SendAsync(request, cancellationToken);
            }
            finally
            {
                lock (gate)
                {
                    inFlight--;
                }
            }
        }
    }
}
