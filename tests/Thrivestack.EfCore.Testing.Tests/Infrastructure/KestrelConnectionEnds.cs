using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;

namespace Thrivestack.EfCore.Testing.Tests.Infrastructure;

/// <summary>
/// Why Kestrel's connections ended, from its <c>kestrel.connection.duration</c> measurements (meter
/// <c>Microsoft.AspNetCore.Server.Kestrel</c>), whose <c>error.type</c> names the cause: <c>aborted_by_app</c> when the
/// application aborted the connection, <c>app_shutdown_timeout</c> when the server aborted it because its shutdown timeout
/// ran out, none for a connection that closed without an error. Create it before the server starts, so that its
/// connections are measured; connections of other servers in the process (tests running beside) are told apart by port.
/// </summary>
internal sealed class KestrelConnectionEnds : IDisposable
{
    /// <summary>The <c>error.type</c> reported for a connection that ended without an error.</summary>
    public const string NoError = "(none)";

    private readonly MeterListener listener = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<string>> watched = new();

    public KestrelConnectionEnds()
    {
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Microsoft.AspNetCore.Server.Kestrel" && instrument.Name == "kestrel.connection.duration")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>(OnConnectionEnded);
        listener.Start();
    }

    /// <summary>
    /// Starts watching the connections to <paramref name="port"/>; call it once the server listens there, before any
    /// connection to it (an earlier server of the process may have had the same port).
    /// </summary>
    public void Watch(int port) => watched.TryAdd(port, new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously));

    /// <summary>The <c>error.type</c> of the first connection to a watched port that ended, or <see cref="NoError"/>; waits for it up to <paramref name="timeout"/>.</summary>
    public Task<string> FirstEndAsync(int port, TimeSpan timeout) => watched[port].Task.WaitAsync(timeout);

    public void Dispose() => listener.Dispose();

    private void OnConnectionEnded(Instrument instrument, double seconds, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        int? port = null;
        var errorType = NoError;
        foreach (var tag in tags)
        {
            if (tag.Key == "server.port" && tag.Value is not null)
            {
                port = Convert.ToInt32(tag.Value, CultureInfo.InvariantCulture);
            }
            else if (tag.Key == "error.type" && tag.Value is not null)
            {
                errorType = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? NoError;
            }
        }

        if (port is { } p && watched.TryGetValue(p, out var end))
        {
            end.TrySetResult(errorType);
        }
    }
}
