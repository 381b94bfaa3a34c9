using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Telemetry;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

public sealed class ThrivestackMetricsTests : IAsyncLifetime
{
    private const string Delivered = "thrivestack.identify.events.delivered";
    private const string DeadLettered = "thrivestack.identify.events.dead_lettered";
    private const string Retried = "thrivestack.identify.events.retried";
    private const string BatchSize = "thrivestack.identify.batch.size";
    private const string BatchBytes = "thrivestack.identify.batch.bytes";
    private const string Duration = "thrivestack.identify.request.duration";
    private const string Pending = "thrivestack.outbox.pending";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Metrics_DeliveredAndRejectedEvents_AreCountedAndEveryRequestIsRecorded()
    {
        harness.StandIn.Faults.RejectedUserIds.Add("bad");
        await harness.EnqueueAsync(new[] { "a", "b", "bad", "c", "d" }.Select(u => (u, (IReadOnlyDictionary<string, object?>?)null)));
        var host = harness.BuildHost(o => o.MaxRequestRetries = 0);
        using var metrics = new MeterRecorder(host.Services.GetRequiredService<IMeterFactory>());

        await host.StartAsync();

        await harness.StandIn.WaitUntilAsync(_ => metrics.Sum(Delivered) == 4 && metrics.Sum(DeadLettered) == 1, Deadline);
        await harness.WaitForOutboxAsync(rows => rows.Count == 1 && rows[0].State == OutboxRowState.DeadLettered);
        Assert.All(metrics.For(Delivered).Concat(metrics.For(DeadLettered)), m => Assert.Equal("TestDbContext", m.Tags["db.context"]));
        Assert.Empty(metrics.For(Retried));

        // One size, bytes and duration per request; the delivered ones match what the stand-in accepted, byte for byte.
        var requests = harness.StandIn.Requests;
        Assert.Equal(requests.Count, metrics.For(BatchSize).Count);
        Assert.Equal(requests.Count, metrics.For(BatchBytes).Count);
        Assert.Equal(requests.Count, metrics.For(Duration).Count);
        var accepted = requests.Where(r => r.StatusCode == 200).ToList();
        Assert.Equal(accepted.Select(r => (double)r.EventCount).Order(), Outcome(metrics, BatchSize, "Delivered"));
        Assert.Equal(accepted.Select(r => (double)r.BodyBytes).Order(), Outcome(metrics, BatchBytes, "Delivered"));
        Assert.Equal(requests.Where(r => r.StatusCode == 400).Select(r => (double)r.BodyBytes).Order(), Outcome(metrics, BatchBytes, "Rejected"));
        Assert.All(metrics.For(Duration), m =>
        {
            Assert.Equal("s", m.Unit);
            Assert.True(m.Value >= 0);
        });
        Assert.Equal("By", metrics.For(BatchBytes)[0].Unit);
    }

    [Fact]
    public async Task Metrics_TransientFailureWhileOthersGoThrough_CountsRetriedEvents()
    {
        await harness.EnqueueAsync([("t0", null)]);
        var host = harness.BuildHost(o => o.MaxRequestRetries = 0);
        using var metrics = new MeterRecorder(host.Services.GetRequiredService<IMeterFactory>());
        await host.StartAsync();
        await harness.StandIn.WaitUntilAsync(_ => metrics.Sum(Delivered) == 1, Deadline);

        // The previous request went through, so this failure counts against its event.
        harness.StandIn.Faults.FailNextRequests = 1;
        await harness.EnqueueAsync([("t1", null)]);

        await harness.StandIn.WaitUntilAsync(_ => metrics.Sum(Delivered) == 2, Deadline);
        Assert.Equal(1, metrics.Sum(Retried));
        Assert.Equal(["Delivered", "Transient", "Delivered"], metrics.For(BatchSize).Select(m => (string?)m.Tags["thrivestack.outcome"]));
    }

    [Fact]
    public async Task Metrics_PendingGauge_ReportsTheBacklog()
    {
        harness.StandIn.Faults.Unauthorized = true;
        await harness.EnqueueAsync(Enumerable.Range(0, 7).Select(i => ($"p{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var host = harness.BuildHost();
        using var metrics = new MeterRecorder(host.Services.GetRequiredService<IMeterFactory>());

        await host.StartAsync();

        // The statistics are read before each claim, so once a request has been answered they have been published.
        await harness.StandIn.WaitUntilAsync(s => s.Requests.Count > 0, Deadline);
        metrics.RecordObservableInstruments();
        var pending = Assert.Single(metrics.For(Pending));
        Assert.Equal(7, pending.Value);
        Assert.Equal("TestDbContext", pending.Tags["db.context"]);
        Assert.Single(metrics.For("thrivestack.outbox.oldest_pending_age"));
    }

    [Fact]
    public async Task ActivitySource_EachRequest_IsOneSendActivity()
    {
        // Activities of this test's dispatcher descend from this root (the host starts it in this async flow),
        // which keeps out the activities of tests running in parallel.
        using var root = new Activity("metrics-test-root").Start();
        var activities = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ThrivestackActivitySource.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> o) =>
                o.Parent.TraceId == root.TraceId ? ActivitySamplingResult.AllDataAndRecorded : ActivitySamplingResult.None,
            ActivityStopped = a =>
            {
                lock (activities)
                {
                    activities.Add(a);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        await harness.EnqueueAsync(Enumerable.Range(0, 6).Select(i => ($"act{i}", (IReadOnlyDictionary<string, object?>?)null)));

        await harness.StartHostAsync(o =>
        {
            o.MaxEventsPerBatch = 2;
            o.MaxRequestRetries = 0;
        });

        await harness.StandIn.WaitForEventsAsync(6, Deadline);
        await harness.StandIn.WaitUntilAsync(_ => Snapshot().Count == 3, Deadline);
        Assert.Equal(3, harness.StandIn.Requests.Count);
        Assert.All(Snapshot(), a =>
        {
            Assert.Equal("thrivestack.identify.send", a.OperationName);
            Assert.Equal(ActivityKind.Client, a.Kind);
            Assert.Equal(2, a.GetTagItem("thrivestack.batch.events"));
            Assert.Equal(200, a.GetTagItem("http.response.status_code"));
            Assert.NotEqual(ActivityStatusCode.Error, a.Status);
        });
        Assert.Equal(harness.StandIn.Requests.Select(r => r.BodyBytes).Order(), Snapshot().Select(a => (int)a.GetTagItem("thrivestack.batch.bytes")!).Order());

        List<Activity> Snapshot()
        {
            lock (activities)
            {
                return [.. activities];
            }
        }
    }

    private static IEnumerable<double> Outcome(MeterRecorder metrics, string instrument, string outcome) =>
        metrics.For(instrument).Where(m => (string?)m.Tags["thrivestack.outcome"] == outcome).Select(m => m.Value).Order();
}
