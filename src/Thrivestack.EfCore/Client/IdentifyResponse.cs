using System.Text.Json;

namespace Thrivestack.EfCore.Client;

/// <summary>
/// ThriveStack's answer, read tolerantly: the documented <c>{ success, response_id, message }</c> and the
/// newer <c>{ success, eventId, warnings }</c>. Every text is truncated by <see cref="ServerText"/>.
/// </summary>
/// <param name="Success">The JSON kind of <c>success</c>: <see cref="JsonValueKind.Undefined"/> when absent.</param>
/// <param name="SuccessText">The raw JSON of <c>success</c> when it is present but not a boolean (such as <c>"false"</c>).</param>
/// <param name="ResponseId">The <c>response_id</c> or <c>eventId</c>.</param>
/// <param name="Message">The <c>message</c>.</param>
/// <param name="Warnings">The <c>warnings</c>, each as text.</param>
internal sealed record IdentifyResponse(JsonValueKind Success, string? SuccessText, string? ResponseId, string? Message, IReadOnlyList<string>? Warnings)
{
    private const int MaxWarnings = 20;

    public static IdentifyResponse Read(JsonElement root)
    {
        var success = TryFind(root, "success", out var s) ? s.ValueKind : JsonValueKind.Undefined;
        var successText = success is JsonValueKind.Undefined or JsonValueKind.True or JsonValueKind.False ? null : ServerText.Truncate(s.GetRawText());
        var responseId = Text(root, "response_id") ?? Text(root, "eventId");
        List<string>? warnings = null;
        if (TryFind(root, "warnings", out var w) && w.ValueKind == JsonValueKind.Array)
        {
            warnings = [];
            foreach (var warning in w.EnumerateArray().Take(MaxWarnings))
            {
                warnings.Add(ServerText.Truncate(AsText(warning))!);
            }
        }

        return new IdentifyResponse(success, successText, responseId, Text(root, "message"), warnings);
    }

    private static string? Text(JsonElement root, string name) =>
        TryFind(root, name, out var value) && value.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined)
            ? ServerText.Truncate(AsText(value))
            : null;

    // Names in any case: a tolerant reader (the earlier reader was case-insensitive too).
    private static bool TryFind(JsonElement root, string name, out JsonElement value)
    {
        foreach (var property in root.EnumerateObject())
        {
            if (property.NameEquals(name) || string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                value = property.Value;
                return true;
            }
        }

        value = default;
        return false;
    }

    private static string AsText(JsonElement value) => value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText();
}
