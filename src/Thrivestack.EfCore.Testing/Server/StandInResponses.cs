using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Thrivestack.EfCore.Testing.Server;

/// <summary>Writes the JSON answers of the identify API.</summary>
internal static class StandInResponses
{
    private const string JsonContentType = "application/json; charset=utf-8";
    private const int GuidLength = 36;

    private static ReadOnlySpan<byte> AcceptedPrefix => "{\"success\":true,\"response_id\":\""u8;

    private static ReadOnlySpan<byte> AcceptedSuffix => "\",\"message\":\"User(s) identified successfully\"}"u8;

    /// <summary>Writes <c>{"success":true,"response_id":"&lt;guid&gt;","message":"User(s) identified successfully"}</c>, without allocating.</summary>
    public static Task WriteAcceptedAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        var length = AcceptedPrefix.Length + GuidLength + AcceptedSuffix.Length;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = JsonContentType;
        response.ContentLength = length;

        var span = response.BodyWriter.GetSpan(length);
        AcceptedPrefix.CopyTo(span);
        Guid.NewGuid().TryFormat(span[AcceptedPrefix.Length..], out _);
        AcceptedSuffix.CopyTo(span[(AcceptedPrefix.Length + GuidLength)..]);
        response.BodyWriter.Advance(length);
        return response.BodyWriter.FlushAsync(cancellationToken).AsTask();
    }

    /// <summary>Writes ThriveStack's newer shape <c>{"success":true,"eventId":"&lt;guid&gt;","warnings":[...]}</c>.</summary>
    public static Task WriteEventIdAsync(HttpResponse response, IReadOnlyList<string> warnings, CancellationToken cancellationToken) =>
        WriteAsync(response, StatusCodes.Status200OK, null, cancellationToken, writer =>
        {
            writer.WriteBoolean("success"u8, true);
            writer.WriteString("eventId"u8, Guid.NewGuid());
            writer.WriteStartArray("warnings"u8);
            foreach (var warning in warnings)
            {
                writer.WriteStringValue(warning);
            }

            writer.WriteEndArray();
        });

    /// <summary>Writes a 200 <c>{"success":false,"response_id":"&lt;guid&gt;","message":"..."}</c>.</summary>
    public static Task WriteSuccessFalseAsync(HttpResponse response, string message, CancellationToken cancellationToken) =>
        WriteAsync(response, StatusCodes.Status200OK, null, cancellationToken, writer =>
        {
            writer.WriteBoolean("success"u8, false);
            writer.WriteString("response_id"u8, Guid.NewGuid());
            writer.WriteString("message"u8, message);
        });

    /// <summary>Writes <c>{"success":false,"message":"..."}</c> with a status code and, when given, a <c>Retry-After</c> header.</summary>
    public static Task WriteErrorAsync(HttpResponse response, int statusCode, string message, TimeSpan? retryAfter, CancellationToken cancellationToken) =>
        WriteAsync(response, statusCode, retryAfter, cancellationToken, writer =>
        {
            writer.WriteBoolean("success"u8, false);
            writer.WriteString("message"u8, message);
        });

    private static async Task WriteAsync(
        HttpResponse response, int statusCode, TimeSpan? retryAfter, CancellationToken cancellationToken, Action<Utf8JsonWriter> writeProperties)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writeProperties(writer);
            writer.WriteEndObject();
        }

        response.StatusCode = statusCode;
        response.ContentType = JsonContentType;
        response.ContentLength = buffer.WrittenCount;
        if (retryAfter is TimeSpan delay)
        {
            response.Headers.RetryAfter = ((long)Math.Ceiling(delay.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }

        await response.Body.WriteAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
    }
}
