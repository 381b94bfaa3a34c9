using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>One timed drain and the stand-in's record of it.</summary>
internal sealed record NetworkRun(DrainScenario.Run Run, IReadOnlyList<ReceivedRequest> Requests, DateTimeOffset Start, DateTimeOffset End, int PeakConcurrentRequests, string Limit)
{
    public RequestTimeline Timeline(TimeSpan latency, int full) => RequestTimeline.Of(Requests, Start, End, latency, full);
}
