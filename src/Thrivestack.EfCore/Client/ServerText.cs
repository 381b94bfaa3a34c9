namespace Thrivestack.EfCore.Client;

/// <summary>
/// Bounds every text a server chose (message, reason phrase, <c>Location</c>, warnings) before it reaches a
/// <see cref="SendResult"/>, and so a log line or an outbox column.
/// </summary>
internal static class ServerText
{
    /// <summary>The most characters of one server text that are kept.</summary>
    public const int MaxChars = 500;

    public static string? Truncate(string? text)
    {
        if (text is null)
        {
            return null;
        }

        var kept = text.Length <= MaxChars ? text : text[..MaxChars] + "...";

        // A server's CR/LF must not start a forged line in a plain-text log.
        return kept.AsSpan().ContainsAnyInRange('\0', '\u001f') ? string.Create(kept.Length, kept, static (span, source) =>
        {
            for (var i = 0; i < source.Length; i++)
            {
                span[i] = char.IsControl(source[i]) ? ' ' : source[i];
            }
        }) : kept;
    }
}
