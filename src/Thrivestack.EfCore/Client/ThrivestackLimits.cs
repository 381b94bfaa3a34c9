namespace Thrivestack.EfCore.Client;

/// <summary>
/// ThriveStack's limits on one request. Internal: a public <c>const</c> would be compiled into callers and could never
/// follow a change of the API.
/// </summary>
internal static class ThrivestackLimits
{
    /// <summary>The largest number of events ThriveStack accepts in one request.</summary>
    public const int MaxEventsPerRequest = 1000;

    /// <summary>The largest request body ThriveStack accepts (2 MB, read as 2,000,000 bytes).</summary>
    public const int MaxRequestBytes = 2_000_000;
}
