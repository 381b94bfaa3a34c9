using Thrivestack.EfCore.Testing.Tests.Infrastructure;

namespace Thrivestack.EfCore.Testing.Tests;

/// <summary>
/// Pins docs/testing.md's "<c>DisposeAsync</c> stops the server; requests held by <c>Latency</c> are aborted at once": the
/// stand-in ends a held request itself as soon as it is disposed. Left to Kestrel, the request would be aborted too, but only
/// once the server's shutdown timeout (5 s) had run out, holding up every test's dispose; Kestrel's connection metric names
/// which of the two ended the connection, so the test needs no timing threshold.
/// </summary>
public sealed class StandInShutdownTests
{
    /// <summary>A deadline for each step, far beyond what it takes; a request held by the latency would never make it.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task DisposeAsync_RequestHeldByLatency_AbortsItItselfWithoutWaitingForTheServersShutdownTimeout()
    {
        using var connections = new KestrelConnectionEnds();

        // A fake clock that nobody advances: the ten minutes of latency never pass, only an abort can end the request.
        var clock = new TimerRecordingTimeProvider();
        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { TimeProvider = clock });
        connections.Watch(standIn.Endpoint.Port);
        standIn.Faults.Latency = TimeSpan.FromMinutes(10);
        using var client = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        var sent = client.PostIdentifyAsync(standIn, IdentifyJson.Users(1));
        await standIn.WaitUntilAsync(s => s.InFlightRequestCount == 1 && clock.DueTimes.Count == 1, Patience);

        // Disposed here, while the request is held (and once more at the end, which does nothing).
        await standIn.DisposeAsync().AsTask().WaitAsync(Patience);

        await Assert.ThrowsAsync<HttpRequestException>(() => sent.WaitAsync(Patience));
        Assert.Equal([TimeSpan.FromMinutes(10)], clock.DueTimes);
        var request = Assert.Single(standIn.Requests);
        Assert.Equal(499, request.StatusCode);
        Assert.Equal(0, standIn.InFlightRequestCount);
        Assert.Equal(0, standIn.AcceptedEventCount);
        Assert.Equal("aborted_by_app", await connections.FirstEndAsync(standIn.Endpoint.Port, Patience));
    }
}
