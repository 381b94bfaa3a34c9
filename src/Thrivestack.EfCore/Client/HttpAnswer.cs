using System.Buffers;

namespace Thrivestack.EfCore.Client;

/// <summary>
/// What one HTTP attempt answered, read within the attempt's timeout: the status, the headers the classifier needs and at
/// most <see cref="MaxBodyBytes"/> of the body. The response is disposed once this is read.
/// </summary>
internal sealed record HttpAnswer(int StatusCode, string? ReasonPhrase, string? Location, string? ContentType, TimeSpan? RetryAfter, ReadOnlyMemory<byte> Body, HttpAnswerBody BodyState)
{
    /// <summary>The most bytes of an answer that are read; ThriveStack's answers are a few hundred bytes.</summary>
    public const int MaxBodyBytes = 64 * 1024;

    public static async Task<HttpAnswer> ReadAsync(HttpResponseMessage response, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(MaxBodyBytes + 1);
        try
        {
            var length = 0;
            var state = HttpAnswerBody.Complete;
            try
            {
                var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                await using (stream.ConfigureAwait(false))
                {
                    int read;
                    while (length <= MaxBodyBytes && (read = await stream.ReadAsync(buffer.AsMemory(length, MaxBodyBytes + 1 - length), cancellationToken).ConfigureAwait(false)) > 0)
                    {
                        length += read;
                    }
                }
            }
            catch (IOException)
            {
                // The connection broke off inside the body (fewer bytes than Content-Length, no last chunk).
                state = HttpAnswerBody.BrokenOff;
            }

            if (length > MaxBodyBytes)
            {
                length = MaxBodyBytes;
                state = HttpAnswerBody.TooLong;
            }

            return new HttpAnswer(
                (int)response.StatusCode,
                ServerText.Truncate(response.ReasonPhrase),
                ServerText.Truncate(response.Headers.NonValidated.TryGetValues("Location", out var location) ? location.ToString() : null),
                ServerText.Truncate(response.Content.Headers.ContentType?.MediaType),
                RetryAfterHeader.Parse(response.Headers, now),
                buffer.AsSpan(0, length).ToArray(),
                state);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
