using Thrivestack.EfCore.Diagnostics;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>What one dispatcher knows about its health, read by the health check. Thread-safe by replacement.</summary>
internal sealed class DispatcherStatus<TContext>
{
    public volatile OutboxStatistics? Statistics;

    /// <summary>Set while sending is paused because ThriveStack refused the token.</summary>
    public DateTimeOffset? AuthPausedSince { get; set; }

    /// <summary>Set while the outbox cannot be read; cleared by the next successful statement.</summary>
    public DateTimeOffset? OutboxUnavailableSince { get; set; }

    public string? OutboxError { get; set; }
}
