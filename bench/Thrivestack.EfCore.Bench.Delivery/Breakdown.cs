using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// Where a drain's wall-clock time goes (<c>--breakdown true</c>): SQL commands by kind, timed from execution to
/// the end of reading (an interceptor on the application's own context), and ThriveStack requests (the library's
/// <c>thrivestack.identify.request.duration</c> histogram). The dispatcher is sequential, so the rest is its own code.
/// </summary>
internal sealed class Breakdown : DbCommandInterceptor, IDisposable
{
    private readonly ConcurrentDictionary<DbCommand, long> started = new();
    private readonly ConcurrentDictionary<string, (long Ticks, int Count)> totals = new();
    private readonly MeterListener listener = new();

    public Breakdown()
    {
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Thrivestack.EfCore" && instrument.Name == "thrivestack.identify.request.duration")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, seconds, _, _) => Add("HTTP request (send + answer)", (long)(seconds * Stopwatch.Frequency)));
        listener.Start();
    }

    public static Breakdown? Current { get; set; }

    /// <summary>Forgets what was timed so far (a long-lived host is measured run by run).</summary>
    public void Clear() => totals.Clear();

    public void Add(string kind, long ticks) =>
        totals.AddOrUpdate(kind, (ticks, 1), (_, t) => (t.Ticks + ticks, t.Count + 1));

    public string Report(TimeSpan wall)
    {
        var lines = totals.OrderByDescending(t => t.Value.Ticks).Select(t =>
        {
            var ms = t.Value.Ticks * 1000.0 / Stopwatch.Frequency;
            return $"    {t.Key,-34} {t.Value.Count,6} x {ms / t.Value.Count,8:0.00} ms = {ms / 1000,7:0.00} s ({ms / wall.TotalMilliseconds * 100,3:0}%)";
        });
        var accounted = totals.Sum(t => t.Value.Ticks) * 1000.0 / Stopwatch.Frequency;
        return string.Join(Environment.NewLine, lines)
            + $"{Environment.NewLine}    {"rest (C#, waits, connections)",-34} {(wall.TotalMilliseconds - accounted) / 1000,27:0.00} s ({(wall.TotalMilliseconds - accounted) / wall.TotalMilliseconds * 100,3:0}%)";
    }

    public void Dispose() => listener.Dispose();

    public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
    {
        started[command] = Stopwatch.GetTimestamp();
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult DataReaderClosing(DbCommand command, DataReaderClosingEventData eventData, InterceptionResult result)
    {
        Stop(command);
        return result;
    }

    public override ValueTask<InterceptionResult> DataReaderClosingAsync(DbCommand command, DataReaderClosingEventData eventData, InterceptionResult result)
    {
        Stop(command);
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult DataReaderDisposing(DbCommand command, DataReaderDisposingEventData eventData, InterceptionResult result)
    {
        Stop(command);
        return result;
    }

    public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        started[command] = Stopwatch.GetTimestamp();
        return ValueTask.FromResult(result);
    }

    public override ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        Stop(command);
        return ValueTask.FromResult(result);
    }

    public override ValueTask<InterceptionResult<object>> ScalarExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<object> result, CancellationToken cancellationToken = default)
    {
        started[command] = Stopwatch.GetTimestamp();
        return ValueTask.FromResult(result);
    }

    public override ValueTask<object?> ScalarExecutedAsync(DbCommand command, CommandExecutedEventData eventData, object? result, CancellationToken cancellationToken = default)
    {
        Stop(command);
        return ValueTask.FromResult(result);
    }

    private void Stop(DbCommand command)
    {
        if (started.TryRemove(command, out var start))
        {
            Add(Kind(command.CommandText), Stopwatch.GetTimestamp() - start);
        }
    }

    public const string ClaimKind = "SQL claim (SELECT under the outbox lease)";

    public static string Kind(string sql)
    {
        var text = sql.TrimStart();
        return text switch
        {
            _ when text.Contains("json_each(@p7)", StringComparison.Ordinal) || text.Contains("\"lease_owner\" =", StringComparison.Ordinal) => ClaimKind,
            _ when text.Contains("ON CONFLICT (\"name\", \"entity\")", StringComparison.Ordinal) => "SQL outbox lease (upsert)",
            _ when text.StartsWith("PRAGMA", StringComparison.OrdinalIgnoreCase) => "SQL PRAGMA",
            _ when text.StartsWith("BEGIN", StringComparison.OrdinalIgnoreCase) || text.StartsWith("COMMIT", StringComparison.OrdinalIgnoreCase) => "SQL BEGIN/COMMIT",
            _ when text.StartsWith("DELETE", StringComparison.OrdinalIgnoreCase) => "SQL acknowledge (DELETE)",
            _ when text.StartsWith("UPDATE", StringComparison.OrdinalIgnoreCase) => "SQL other UPDATE",
            _ when text.StartsWith("SELECT", StringComparison.OrdinalIgnoreCase) => "SQL statistics (SELECT)",
            _ => "SQL other",
        };
    }
}
