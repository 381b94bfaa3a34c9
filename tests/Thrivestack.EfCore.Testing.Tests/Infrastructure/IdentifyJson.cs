using System.Globalization;

namespace Thrivestack.EfCore.Testing.Tests.Infrastructure;

/// <summary>Builds identify request bodies.</summary>
internal static class IdentifyJson
{
    public const string Timestamp = "2023-12-14T16:07:33.571125Z";

    public static string Event(string userId, string? traits = null, string? context = null)
    {
        var json = $"{{\"user_id\":\"{userId}\",\"timestamp\":\"{Timestamp}\"";
        json += traits is null ? string.Empty : $",\"traits\":{traits}";
        json += context is null ? string.Empty : $",\"context\":{context}";
        return json + "}";
    }

    public static string Batch(params string[] events) => "[" + string.Join(",", events) + "]";

    public static string Users(int count, string prefix = "user-") =>
        Batch([.. Enumerable.Range(0, count).Select(i => Event(prefix + i.ToString(CultureInfo.InvariantCulture)))]);

    /// <summary>One event whose body is exactly <paramref name="bytes"/> bytes long, padded in a trait.</summary>
    public static string OfSize(int bytes)
    {
        var prefix = $"[{{\"user_id\":\"big\",\"timestamp\":\"{Timestamp}\",\"traits\":{{\"pad\":\"";
        const string suffix = "\"}}]";
        return prefix + new string('x', bytes - prefix.Length - suffix.Length) + suffix;
    }
}
