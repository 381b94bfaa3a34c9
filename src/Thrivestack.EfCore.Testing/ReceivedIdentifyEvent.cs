using System.Text.Json;

namespace Thrivestack.EfCore.Testing;

/// <summary>An identify event the stand-in accepted.</summary>
public sealed class ReceivedIdentifyEvent
{
    /// <summary>The event's <c>user_id</c>.</summary>
    public string UserId { get; init; } = "";

    /// <summary>The event's <c>timestamp</c> (UTC).</summary>
    public DateTimeOffset Timestamp { get; init; }

    /// <summary>The event's <c>context.group_id</c>, or <see langword="null"/> when there is none.</summary>
    public string? GroupId { get; init; }

    /// <summary>The event's <c>traits</c> object, or <see langword="null"/> when it was omitted. It outlives the request.</summary>
    public JsonElement? Traits { get; init; }

    /// <summary>The event's <c>context</c> object, or <see langword="null"/> when it was omitted. It outlives the request.</summary>
    public JsonElement? Context { get; init; }

    /// <summary>The <see cref="ReceivedRequest.Index"/> of the request that carried the event.</summary>
    public int RequestIndex { get; init; }

    /// <summary>The event exactly as it was sent.</summary>
    public string Json { get; init; } = "";
}
