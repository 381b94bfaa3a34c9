using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>
/// Records the measurements of one host's <c>Thrivestack.EfCore</c> meter. Meters made by a host's
/// <see cref="IMeterFactory"/> carry that factory as their scope, so hosts of tests running in parallel never mix in.
/// </summary>
internal sealed class MeterRecorder : IDisposable
{
    private readonly MeterListener listener = new();
    private readonly ConcurrentQueue<Recorded> measurements = new();

    public MeterRecorder(IMeterFactory factory)
    {
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ThrivestackMetrics.MeterName && ReferenceEquals(instrument.Meter.Scope, factory))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<int>((i, value, tags, _) => Add(i, value, tags));
        listener.SetMeasurementEventCallback<long>((i, value, tags, _) => Add(i, value, tags));
        listener.SetMeasurementEventCallback<double>((i, value, tags, _) => Add(i, value, tags));
        listener.Start();
    }

    public IReadOnlyList<Recorded> For(string instrument) => measurements.Where(m => m.Instrument == instrument).ToList();

    public double Sum(string instrument) => For(instrument).Sum(m => m.Value);

    /// <summary>Asks the observable instruments (the outbox gauges) for their current values.</summary>
    public void RecordObservableInstruments() => listener.RecordObservableInstruments();

    public void Dispose() => listener.Dispose();

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags) =>
        measurements.Enqueue(new Recorded(instrument.Name, instrument.Unit, value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));

    public sealed record Recorded(string Instrument, string? Unit, double Value, IReadOnlyDictionary<string, object?> Tags);
}
