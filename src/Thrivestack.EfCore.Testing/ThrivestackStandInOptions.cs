namespace Thrivestack.EfCore.Testing;

/// <summary>Options of a <see cref="ThrivestackStandIn"/>, read once by <see cref="ThrivestackStandIn.StartAsync"/>.</summary>
public sealed class ThrivestackStandInOptions
{
    /// <summary>Gets or sets the API token the stand-in accepts at start. The default value is <c>"test-token"</c>.</summary>
    public string ApiToken { get; set; } = "test-token";

    /// <summary>Gets or sets the header that must carry the token. The default value is <see cref="StandInAuthHeader.Bearer"/>.</summary>
    public StandInAuthHeader AuthHeader { get; set; } = StandInAuthHeader.Bearer;

    /// <summary>Gets or sets the path of the identify endpoint; it must start with <c>/</c>. The default value is <c>"/api/identify"</c>.</summary>
    public string Path { get; set; } = "/api/identify";

    /// <summary>
    /// Gets or sets a value indicating whether accepted events (and the user ids of each request) are kept in
    /// <see cref="ThrivestackStandIn.Events"/> and <see cref="ThrivestackStandIn.Requests"/>. Counters work either way;
    /// benchmarks turn this off to keep memory flat. The default value is <see langword="true"/>.
    /// </summary>
    public bool RecordEvents { get; set; } = true;

    /// <summary>Gets or sets the seed of the random numbers behind the fault rates and <see cref="StandInFaults.LatencyJitter"/>, for reproducible runs. The default value is <see langword="null"/> (unseeded).</summary>
    public int? Seed { get; set; }

    /// <summary>Gets or sets the clock of <see cref="StandInFaults.Latency"/> and of <see cref="ReceivedRequest.ReceivedAt"/>; tests of the stand-in use a fake one.</summary>
    internal TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
