using System.Globalization;
using System.Net.Http.Headers;

namespace Thrivestack.EfCore.Client;

/// <summary>
/// Reads <c>Retry-After</c> (seconds or an HTTP date) into a wait between zero and <see cref="Longest"/>. Any value
/// (huge, negative, a date in 9999, garbage) gives a wait <c>Task.Delay</c> accepts, or none; it never throws.
/// </summary>
internal static class RetryAfterHeader
{
    /// <summary>The longest wait a server can ask for; the dispatcher caps it further by <c>RetryMaxDelay</c>.</summary>
    public static readonly TimeSpan Longest = TimeSpan.FromDays(1);

    public static TimeSpan? Parse(HttpResponseHeaders headers, DateTimeOffset now)
    {
        if (!headers.NonValidated.TryGetValues("Retry-After", out var values) || values.Count == 0)
        {
            return null;
        }

        var value = values.ToString().Trim();
        if (value.Length > 0 && value.AsSpan().IndexOfAnyExceptInRange('0', '9') < 0)
        {
            // Too many digits for a ulong is still a number of seconds: longer than any cap.
            return ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds < (ulong)Longest.TotalSeconds
                ? TimeSpan.FromSeconds(seconds)
                : Longest;
        }

        if (RetryConditionHeaderValue.TryParse(value, out var parsed) && parsed.Date is { } date)
        {
            var wait = date - now;
            return wait <= TimeSpan.Zero ? TimeSpan.Zero : wait > Longest ? Longest : wait;
        }

        return null;
    }
}
