using System.Text.Json.Serialization;

namespace Thrivestack.EfCore.Client;

/// <summary>
/// ThriveStack's answer, read tolerantly: the documented <c>{ success, response_id, message }</c> and the
/// newer <c>{ success, eventId, warnings }</c>.
/// </summary>
internal sealed record IdentifyResponse(
    [property: JsonPropertyName("success")] bool? Success,
    [property: JsonPropertyName("response_id")] string? ResponseId,
    [property: JsonPropertyName("eventId")] string? EventId,
    [property: JsonPropertyName("message")] string? Message,
    [property: JsonPropertyName("warnings")] IReadOnlyList<string>? Warnings);
