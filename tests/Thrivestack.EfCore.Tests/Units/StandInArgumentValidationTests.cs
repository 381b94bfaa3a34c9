using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>Every public entry of Thrivestack.EfCore.Testing refuses null and out-of-range arguments, naming them.</summary>
public sealed class StandInArgumentValidationTests : IAsyncLifetime
{
    private ThrivestackStandIn standIn = null!;

    public async Task InitializeAsync() => standIn = await ThrivestackStandIn.StartAsync();

    public async Task DisposeAsync() => await standIn.DisposeAsync();

    [Fact]
    public async Task ThrivestackStandIn_NullOrOutOfRangeArguments_Throw()
    {
        Assert.Equal("userId", Assert.Throws<ArgumentNullException>(() => standIn.EventsFor(null!)).ParamName);
        Assert.Equal("count", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => standIn.WaitForEventsAsync(-1, TimeSpan.FromSeconds(1)))).ParamName);
        Assert.Equal("condition", (await Assert.ThrowsAsync<ArgumentNullException>(() => standIn.WaitUntilAsync(null!, TimeSpan.FromSeconds(1)))).ParamName);
        Assert.Equal("timeout", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => standIn.WaitForEventsAsync(1, TimeSpan.FromSeconds(-2)))).ParamName);
        Assert.Equal("timeout", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => standIn.WaitUntilAsync(_ => true, TimeSpan.FromSeconds(-2)))).ParamName);
        Assert.Throws<ArgumentException>(() => standIn.ApiToken = "");
        Assert.Throws<ArgumentNullException>(() => standIn.ApiToken = null!);
    }

    [Fact]
    public async Task StartAsync_InvalidOptions_Throw()
    {
        Assert.Equal("options", (await Assert.ThrowsAsync<ArgumentException>(() => ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { ApiToken = "" }))).ParamName);
        Assert.Equal("options", (await Assert.ThrowsAsync<ArgumentException>(() => ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { AuthHeader = (StandInAuthHeader)7 }))).ParamName);
    }

    [Fact]
    public void StandInFaults_OutOfRangeValues_Throw()
    {
        var faults = standIn.Faults;

        OutOfRange("ServerErrorRate", () => faults.ServerErrorRate = 1.01);
        OutOfRange("ServerErrorRate", () => faults.ServerErrorRate = -0.01);
        OutOfRange("ServerErrorRate", () => faults.ServerErrorRate = double.NaN);
        OutOfRange("TooManyRequestsRate", () => faults.TooManyRequestsRate = 2);
        OutOfRange("Latency", () => faults.Latency = TimeSpan.FromMilliseconds(-1));
        OutOfRange("RetryAfter", () => faults.RetryAfter = TimeSpan.FromSeconds(-1));
        OutOfRange("FailNextRequests", () => faults.FailNextRequests = -1);
        OutOfRange("FailStatusCode", () => faults.FailStatusCode = 399);
        OutOfRange("FailStatusCode", () => faults.FailStatusCode = 600);
        Assert.Throws<ArgumentNullException>(() => faults.RejectedUserIds.Add(null!));
        Assert.Throws<ArgumentNullException>(() => faults.Warnings.Add(null!));

        // Refused values leave the faults as they were.
        Assert.Equal(0, faults.ServerErrorRate);
        Assert.Equal(0, faults.FailNextRequests);
        Assert.Empty(faults.RejectedUserIds);
    }

    private static void OutOfRange(string parameter, Action set) =>
        Assert.Equal(parameter, Assert.Throws<ArgumentOutOfRangeException>(set).ParamName);
}
