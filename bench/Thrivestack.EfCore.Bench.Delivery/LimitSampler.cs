using System.Diagnostics.Metrics;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// Samples the dispatcher's concurrency limit (the <c>thrivestack.identify.requests.limit</c> gauge, whole requests)
/// every few milliseconds during a run: how much of the time it spent at each level, and how often it dropped.
/// </summary>
internal sealed class LimitSampler : IAsyncDisposable
{
    private readonly MeterListener listener = new();
    private readonly CancellationTokenSource stop = new();
    private readonly List<int> samples = [];
    private readonly Task loop;
    private int latest = -1;

    public LimitSampler()
    {
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Thrivestack.EfCore" && instrument.Name == "thrivestack.identify.requests.limit")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<int>((_, value, _, _) => latest = value);
        listener.Start();
        loop = Task.Run(SampleAsync);
    }

    /// <summary>Share of samples at each limit, the mean, and the number of drops, once stopped.</summary>
    public string Describe()
    {
        var valid = samples.Where(s => s > 0).ToList();
        if (valid.Count == 0)
        {
            return "limit: no samples";
        }

        var drops = valid.Zip(valid.Skip(1)).Count(p => p.Second < p.First);
        var levels = valid.GroupBy(s => s).OrderBy(g => g.Key).Select(g => $"{g.Key}: {(double)g.Count() / valid.Count:P0}");
        return $"limit (sampled every 5 ms): mean {valid.Average():0.0}, {drops} drops, time at each level {string.Join(", ", levels)}";
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        await loop;
        listener.Dispose();
        stop.Dispose();
    }

    private async Task SampleAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(5));
        try
        {
            while (await timer.WaitForNextTickAsync(stop.Token))
            {
                latest = -1;
                listener.RecordObservableInstruments();
                samples.Add(latest);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
