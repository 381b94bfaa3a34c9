namespace Thrivestack.EfCore.Testing.Server;

/// <summary>How the stand-in answers one request: accepted when <see cref="Events"/> is set, otherwise a failure with <see cref="Error"/>.</summary>
internal sealed record Verdict(int StatusCode, string? Error, TimeSpan? RetryAfter = null)
{
    public int EventCount { get; init; }

    public int BodyBytes { get; init; }

    public IReadOnlyList<string> UserIds { get; init; } = [];

    /// <summary>Gets the accepted events to record (empty when events are not kept); <see langword="null"/> when not accepted.</summary>
    public IReadOnlyList<ReceivedIdentifyEvent>? Events { get; init; }
}
