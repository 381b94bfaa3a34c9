using System.Text.Json;

namespace Thrivestack.EfCore.Testing;

/// <summary>An identify event the stand-in accepted.</summary>
/// <param name="UserId">The event's <c>user_id</c>.</param>
/// <param name="Timestamp">The event's <c>timestamp</c> (UTC).</param>
/// <param name="GroupId">The event's <c>context.group_id</c>, or <see langword="null"/> when there is none.</param>
/// <param name="Traits">The event's <c>traits</c> object, or <see langword="null"/> when it was omitted. It outlives the request.</param>
/// <param name="Context">The event's <c>context</c> object, or <see langword="null"/> when it was omitted. It outlives the request.</param>
/// <param name="RequestIndex">The <see cref="ReceivedRequest.Index"/> of the request that carried the event.</param>
/// <param name="Json">The event exactly as it was sent.</param>
public sealed record ReceivedIdentifyEvent(
    string UserId,
    DateTimeOffset Timestamp,
    string? GroupId,
    JsonElement? Traits,
    JsonElement? Context,
    int RequestIndex,
    string Json);
