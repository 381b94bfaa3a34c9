namespace Thrivestack.EfCore.Client;

/// <summary>The outcome of one request with what the dispatcher needs to act on it (never the token).</summary>
internal sealed record SendResult(SendOutcome Outcome, int? StatusCode, string? Message, TimeSpan? RetryAfter = null, string? ResponseId = null, IReadOnlyList<string>? Warnings = null)
{
    /// <summary>True when no answer came in time (a per-attempt timeout, or the lease's deadline): a sign of overload.</summary>
    public bool TimedOut { get; init; }

    public string Describe() => StatusCode is { } status ? $"HTTP {status}: {Message}" : Message ?? Outcome.ToString();
}
