using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// "A 429, a 503 or a timeout lowers it" (README, Requests in flight): the 429 is covered by <see cref="GatewayDispatchTests"/>;
/// here a dispatcher that grew its limit on a backlog meets 503 answers, or answers that never come within
/// <c>RequestTimeout</c>, while several requests are in flight, and keeps fewer in flight. Apart from the other dispatch
/// classes so they run side by side (each takes seconds of slow answers).
/// </summary>
public sealed class OverloadLimitTests : IAsyncLifetime
{
    private const string LimitGauge = "thrivestack.identify.requests.limit";

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Theory]
    [InlineData("503")]
    [InlineData("timeout")]
    public async Task Dispatcher_OverloadWhileSeveralRequestsAreInFlight_LowersTheLimit(string overload)
    {
        // Answers slow enough that the network, not the database, is the wait even on a loaded machine: lanes open only then.
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(200);
        await harness.EnqueueAsync(Enumerable.Range(0, 2000).Select(i => ($"o{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var host = harness.BuildHost(o =>
        {
            o.MaxEventsPerBatch = 5;
            o.MaxRequestRetries = 0;
            o.RequestTimeout = TimeSpan.FromSeconds(2);
        });
        using var recorder = new MeterRecorder(host.Services.GetRequiredService<IMeterFactory>());
        await host.StartAsync();

        // Successful answers on a backlog: the limit grows above 1, and several requests are on the wire at once.
        await harness.StandIn.WaitUntilAsync(s => s.InFlightRequestCount >= 3 && Limit(recorder) >= 3, Deadline);
        Assert.True(harness.StandIn.AcceptedRequestCount < 400, "the backlog drained before the overload: the test proves nothing");

        // From now on every answer says overload, also to the requests already in flight (a fault is decided after the latency).
        if (overload == "503")
        {
            harness.StandIn.Faults.FailStatusCode = 503;
            harness.StandIn.Faults.FailNextRequests = int.MaxValue;
        }
        else
        {
            harness.StandIn.Faults.Latency = TimeSpan.FromMinutes(5);
        }

        // Lowered to at most 0.9 times itself once per round trip, so with nothing but overload it reaches the floor.
        await harness.StandIn.WaitUntilAsync(_ => Limit(recorder) == 1, Deadline);
        if (overload == "503")
        {
            Assert.Contains(harness.StandIn.Requests, r => r.StatusCode == 503);
        }
    }

    private static int Limit(MeterRecorder recorder)
    {
        recorder.RecordObservableInstruments();
        var limits = recorder.For(LimitGauge);
        return limits.Count == 0 ? 0 : (int)limits[^1].Value;
    }
}
