using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Thrivestack.EfCore.Testing.Validation;

/// <summary>Checks an identify request body against ThriveStack's rules and reads its events, without copying what it only checks.</summary>
internal static class IdentifyBatchReader
{
    public const int MaxEvents = 1_000;

    private const string UserIdRule = "user_id must be a non-empty string";
    private const string TimestampRule = "timestamp must be an ISO 8601 UTC date-time string ending in Z, e.g. 2023-12-14T16:07:33.571125Z";
    private const string TraitsRule = "traits must be a JSON object";
    private const string ContextRule = "context must be a JSON object";
    private const string GroupIdRule = "context.group_id must be a string";

    /// <summary>Returns what is wrong with the body, or <see langword="null"/> when every rule holds.</summary>
    public static string? Validate(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Array)
        {
            return "request body must be a JSON array of identify events";
        }

        var count = root.GetArrayLength();
        if (count == 0)
        {
            return "request body must contain at least 1 event";
        }

        if (count > MaxEvents)
        {
            return string.Create(CultureInfo.InvariantCulture, $"request body contains {count} events; at most 1,000 are allowed");
        }

        var index = 0;
        foreach (var element in root.EnumerateArray())
        {
            if (ValidateEvent(element) is string rule)
            {
                return string.Create(CultureInfo.InvariantCulture, $"event {index}: {rule}");
            }

            index++;
        }

        return null;
    }

    /// <summary>Reads a validated event into a record that outlives the request's document.</summary>
    public static ReceivedIdentifyEvent ReadEvent(JsonElement element, int requestIndex)
    {
        var clone = element.Clone();
        JsonElement? traits = clone.TryGetProperty("traits"u8, out var t) ? t : null;
        JsonElement? context = clone.TryGetProperty("context"u8, out var c) ? c : null;
        var groupId = context is { } ctx && ctx.TryGetProperty("group_id"u8, out var g) ? g.GetString() : null;
        return new ReceivedIdentifyEvent
        {
            UserId = clone.GetProperty("user_id"u8).GetString()!,
            Timestamp = clone.GetProperty("timestamp"u8).GetDateTimeOffset(),
            GroupId = groupId,
            Traits = traits,
            Context = context,
            RequestIndex = requestIndex,
            Json = clone.GetRawText(),
        };
    }

    /// <summary>Returns the index and user id of the first validated event whose user id is in <paramref name="userIds"/>.</summary>
    public static (int Index, string UserId)? FindFirst(JsonElement root, ICollection<string> userIds)
    {
        var index = 0;
        foreach (var element in root.EnumerateArray())
        {
            var userId = element.GetProperty("user_id"u8).GetString()!;
            if (userIds.Contains(userId))
            {
                return (index, userId);
            }

            index++;
        }

        return null;
    }

    private static string? ValidateEvent(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            return "must be a JSON object";
        }

        if (!element.TryGetProperty("user_id"u8, out var userId)
            || userId.ValueKind != JsonValueKind.String
            || userId.ValueEquals(""u8))
        {
            return UserIdRule;
        }

        if (!element.TryGetProperty("timestamp"u8, out var timestamp) || !IsUtcTimestamp(timestamp))
        {
            return TimestampRule;
        }

        if (element.TryGetProperty("traits"u8, out var traits) && traits.ValueKind != JsonValueKind.Object)
        {
            return TraitsRule;
        }

        if (element.TryGetProperty("context"u8, out var context))
        {
            if (context.ValueKind != JsonValueKind.Object)
            {
                return ContextRule;
            }

            if (context.TryGetProperty("group_id"u8, out var groupId) && groupId.ValueKind != JsonValueKind.String)
            {
                return GroupIdRule;
            }
        }

        return null;
    }

    private static bool IsUtcTimestamp(JsonElement timestamp)
    {
        if (timestamp.ValueKind != JsonValueKind.String || !timestamp.TryGetDateTimeOffset(out _))
        {
            return false;
        }

        // The raw value includes its quotes: "...Z". An offset such as +00:00 is a valid date-time, but not the Z form the API asks for.
        var raw = JsonMarshal.GetRawUtf8Value(timestamp);
        return raw.Length > 2 && raw[^2] == (byte)'Z';
    }
}
