using Microsoft.Extensions.Logging;

namespace Thrivestack.EfCore.Diagnostics;

/// <summary>Every log line of the library: ids and counts, never trait values or the token.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Identify dispatcher for {Context} started as {Owner}.")]
    public static partial void DispatcherStarted(ILogger logger, string context, string owner);

    [LoggerMessage(2, LogLevel.Information, "Identify dispatcher for {Context} stopped.")]
    public static partial void DispatcherStopped(ILogger logger, string context);

    [LoggerMessage(3, LogLevel.Debug, "Delivered identify events: {Count} ({Bytes} bytes) for {Context}; response {ResponseId}.")]
    public static partial void BatchDelivered(ILogger logger, int count, int bytes, string context, string? responseId);

    [LoggerMessage(4, LogLevel.Warning, "ThriveStack answered with warnings for rows {RowIds}: {Warnings}.")]
    public static partial void ResponseWarnings(ILogger logger, string rowIds, string warnings);

    [LoggerMessage(5, LogLevel.Warning, "Identify batch of {Count} events for {Context} failed ({Reason}); the rows are retried later.")]
    public static partial void BatchRetried(ILogger logger, int count, string context, string reason);

    [LoggerMessage(6, LogLevel.Error, "Identify event {RowId} of user {UserId} was dead-lettered: {Reason}.")]
    public static partial void EventDeadLettered(ILogger logger, long rowId, string userId, string reason);

    [LoggerMessage(7, LogLevel.Error, "ThriveStack refused the API token ({Reason}); sending for {Context} is paused for {Pause}. No event loses an attempt while paused. Check Thrivestack:ApiToken or the TokenProvider.")]
    public static partial void SendingPaused(ILogger logger, string reason, string context, string pause);

    [LoggerMessage(8, LogLevel.Information, "ThriveStack accepted a request again; sending for {Context} resumed.")]
    public static partial void SendingResumed(ILogger logger, string context);

    [LoggerMessage(9, LogLevel.Error, "The identify outbox of {Context} cannot be read or written; the dispatcher retries without a restart.")]
    public static partial void OutboxUnavailable(ILogger logger, Exception exception, string context);

    [LoggerMessage(10, LogLevel.Information, "The identify outbox of {Context} is reachable again after {Outage}.")]
    public static partial void OutboxRecovered(ILogger logger, string context, string outage);

    [LoggerMessage(11, LogLevel.Debug, "Cleaned up {Count} delivered identify rows of {Context}.")]
    public static partial void DeliveredCleanedUp(ILogger logger, int count, string context);

    [LoggerMessage(12, LogLevel.Warning, "Identify batch of {Count} events for {Context} was rejected ({Reason}); splitting it to find the bad events.")]
    public static partial void BatchSplit(ILogger logger, int count, string context, string reason);

    // The dispatcher's loop (ids 30-39).
    [LoggerMessage(30, LogLevel.Error, "The identify dispatcher for {Context} failed unexpectedly (a bug; please report it); it goes on in {Pause}.")]
    public static partial void DispatcherFailedUnexpectedly(ILogger logger, Exception exception, string context, string pause);

    [LoggerMessage(31, LogLevel.Error, "ThriveStack's answer at {Endpoint} means the configuration is wrong ({Reason}); sending for {Context} is paused for {Pause}. No event loses an attempt while paused. Check Thrivestack:Endpoint.")]
    public static partial void SendingMisconfigured(ILogger logger, string endpoint, string reason, string context, string pause);

    [LoggerMessage(32, LogLevel.Warning, "Identify requests for {Context} fail ({Reason}) and none succeeds: ThriveStack looks unavailable. Sending backs off for {Pause}; no event spends an attempt.")]
    public static partial void SendingBackedOff(ILogger logger, string context, string reason, string pause);

    [LoggerMessage(33, LogLevel.Warning, "Identify batch of {Count} events for {Context} was refused ({Reason}); splitting it to find the events that cause it.")]
    public static partial void BatchIsolated(ILogger logger, int count, string context, string reason);
}
