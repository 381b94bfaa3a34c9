using System.Diagnostics.Metrics;

namespace Thrivestack.EfCore.Telemetry;

/// <summary>
/// The meter <c>Thrivestack.EfCore</c>: outbox gauges fed by the dispatchers' periodic statistics, counters of
/// delivered, retried and dead-lettered events, and histograms of batch size, bytes and request duration.
/// </summary>
internal sealed class ThrivestackMetrics
{
    public const string MeterName = "Thrivestack.EfCore";

    private readonly Counter<long> delivered;
    private readonly Counter<long> retried;
    private readonly Counter<long> deadLettered;
    private readonly Counter<long> leaseLost;
    private readonly Histogram<int> batchSize;
    private readonly Histogram<int> batchBytes;
    private readonly Histogram<double> requestDuration;
    private readonly Lock gate = new();
    private readonly Dictionary<string, OutboxStatistics> statistics = [];
    private readonly Dictionary<string, Func<double>> limits = [];

    public ThrivestackMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        delivered = meter.CreateCounter<long>("thrivestack.identify.events.delivered", "{event}", "Events ThriveStack accepted.");
        retried = meter.CreateCounter<long>("thrivestack.identify.events.retried", "{event}", "Events scheduled for another attempt after a transient failure.");
        deadLettered = meter.CreateCounter<long>("thrivestack.identify.events.dead_lettered", "{event}", "Events that can never be delivered, kept with the reason.");
        leaseLost = meter.CreateCounter<long>("thrivestack.identify.events.lease_lost", "{event}", "Events whose acknowledgement found them leased to another dispatcher (the lease ended first); not counted as delivered here.");
        batchSize = meter.CreateHistogram<int>("thrivestack.identify.batch.size", "{event}", "Events per request.");
        batchBytes = meter.CreateHistogram<int>("thrivestack.identify.batch.bytes", "By", "Bytes of each request body.");
        requestDuration = meter.CreateHistogram<double>("thrivestack.identify.request.duration", "s", "Duration of each request, retries included.");
        meter.CreateObservableGauge("thrivestack.outbox.pending", () => Observe(s => s.Pending), "{event}", "Rows waiting for delivery.");
        meter.CreateObservableGauge("thrivestack.identify.requests.limit", ObserveLimits, "{request}", "Requests each dispatcher may keep in flight now (found at run time).");
        meter.CreateObservableGauge("thrivestack.outbox.oldest_pending_age", () => Observe(s => s.OldestPendingAge.TotalSeconds), "s", "Age of the oldest row waiting for delivery.");
    }

    public void Delivered(int count, string context) => delivered.Add(count, new KeyValuePair<string, object?>("db.context", context));

    public void Retried(int count, string context) => retried.Add(count, new KeyValuePair<string, object?>("db.context", context));

    public void DeadLettered(int count, string context) => deadLettered.Add(count, new KeyValuePair<string, object?>("db.context", context));

    public void LeaseLost(int count, string context) => leaseLost.Add(count, new KeyValuePair<string, object?>("db.context", context));

    /// <summary>Publishes a dispatcher's current concurrency limit under its context's name.</summary>
    public void PublishLimit(string context, Func<double> limit)
    {
        lock (gate)
        {
            limits[context] = limit;
        }
    }

    public void RecordRequest(int events, int bytes, TimeSpan duration, string outcome)
    {
        var tag = new KeyValuePair<string, object?>("thrivestack.outcome", outcome);
        batchSize.Record(events, tag);
        batchBytes.Record(bytes, tag);
        requestDuration.Record(duration.TotalSeconds, tag);
    }

    public void Publish(string context, OutboxStatistics value)
    {
        lock (gate)
        {
            statistics[context] = value;
        }
    }

    private IEnumerable<Measurement<int>> ObserveLimits()
    {
        lock (gate)
        {
            return limits.Select(l => new Measurement<int>((int)l.Value(), new KeyValuePair<string, object?>("db.context", l.Key))).ToArray();
        }
    }

    private IEnumerable<Measurement<T>> Observe<T>(Func<OutboxStatistics, T> select)
        where T : struct
    {
        lock (gate)
        {
            return statistics.Select(s => new Measurement<T>(select(s.Value), new KeyValuePair<string, object?>("db.context", s.Key))).ToArray();
        }
    }
}
