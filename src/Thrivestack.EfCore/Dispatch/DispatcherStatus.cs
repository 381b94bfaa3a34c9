using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>What one dispatcher knows about its health, read by the health check. Thread-safe by replacement.</summary>
internal sealed class DispatcherStatus<TContext>
{
    public volatile OutboxStatistics? Statistics;

    // Boxed in volatile fields: the health check reads them on another thread, and a DateTimeOffset? is
    // wider than an atomic write.
    private volatile object? authPausedSince;
    private volatile object? outboxUnavailableSince;
    private volatile string? outboxError;
    private volatile string? pauseMessage;

    /// <summary>Set while sending is paused because ThriveStack refused the token or the configuration is wrong (see <see cref="PauseMessage"/>).</summary>
    public DateTimeOffset? AuthPausedSince
    {
        get => (DateTimeOffset?)authPausedSince;
        set => authPausedSince = value;
    }

    /// <summary>Set while the outbox cannot be read; cleared by the next successful statement.</summary>
    public DateTimeOffset? OutboxUnavailableSince
    {
        get => (DateTimeOffset?)outboxUnavailableSince;
        set => outboxUnavailableSince = value;
    }

    /// <summary>Why sending is paused, for the health check; null while not paused.</summary>
    public string? PauseMessage
    {
        get => pauseMessage;
        set => pauseMessage = value;
    }

    public string? OutboxError
    {
        get => outboxError;
        set => outboxError = value;
    }
}
