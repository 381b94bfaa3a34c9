using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// Where a drain at network speed lost time, read from the stand-in's request log: when the first request arrived,
/// how many requests were in flight on average (each accepted one from its arrival for the configured latency), how
/// long the ramp-up to the full number and the tail with fewer lanes busy took, and how many requests got a 429.
/// </summary>
/// <remarks>
/// An accepted request is taken to be in flight from its arrival for exactly the configured latency; a timer may fire a
/// millisecond early, so <see cref="Peak"/> can exceed the stand-in's own <c>PeakConcurrentRequests</c> by one: quote that.
/// </remarks>
internal sealed record RequestTimeline(
    int Requests,
    int Refused,
    double FirstRequestSeconds,
    double AverageInFlight,
    double FullShare,
    double RampSeconds,
    double TailSeconds,
    int Peak)
{
    /// <summary>Reads the stand-in's requests of one run that started at <paramref name="start"/> and ended at <paramref name="end"/>.</summary>
    public static RequestTimeline Of(IReadOnlyList<ReceivedRequest> requests, DateTimeOffset start, DateTimeOffset end, TimeSpan latency, int full)
    {
        var accepted = requests.Where(r => r.StatusCode == 200).ToList();
        var changes = accepted.SelectMany(r => new[] { (At: r.ReceivedAt, Delta: 1), (At: r.ReceivedAt + latency, Delta: -1) })
            .OrderBy(c => c.At).ThenBy(c => c.Delta).ToList();
        double weighted = 0, atFull = 0;
        DateTimeOffset? firstFull = null, lastFull = null;
        var level = 0;
        var peak = 0;
        var previous = start;
        foreach (var (at, delta) in changes)
        {
            var clipped = at < start ? start : at > end ? end : at;
            var span = (clipped - previous).TotalSeconds;
            weighted += level * span;
            if (level >= full)
            {
                atFull += span;
                lastFull = clipped;
            }

            previous = clipped;
            level += delta;
            peak = Math.Max(peak, level);
            if (level >= full)
            {
                firstFull ??= clipped;
            }
        }

        var wall = (end - start).TotalSeconds;
        var first = requests.Count == 0 ? double.NaN : (requests.Min(r => r.ReceivedAt) - start).TotalSeconds;
        return new RequestTimeline(
            requests.Count,
            requests.Count(r => r.StatusCode == 429),
            first,
            weighted / wall,
            atFull / wall,
            firstFull is { } f ? (f - start).TotalSeconds : double.NaN,
            lastFull is { } l ? (end - l).TotalSeconds : double.NaN,
            peak);
    }

    public double RefusedShare => Requests == 0 ? 0 : (double)Refused / Requests;

    public string Describe(int full) =>
        $"{Requests:N0} requests ({Refused:N0} answered 429, {RefusedShare:P1}), first at +{FirstRequestSeconds * 1000:0} ms, "
        + $"in flight {AverageInFlight:0.00} on average, {full} in flight from +{RampSeconds:0.00} s for {FullShare:P0} of the time, "
        + $"tail below {full}: {TailSeconds:0.00} s";
}
