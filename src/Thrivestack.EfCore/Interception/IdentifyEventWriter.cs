using System.Buffers;
using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Writes one identify event as the exact JSON object that goes on the wire, with <see cref="Utf8JsonWriter"/>
/// (no reflection). The dispatcher only joins these objects into an array, so sizes are known before sending.
/// </summary>
internal sealed class IdentifyEventWriter
{
    private static readonly JsonWriterOptions Options = new()
    {
        // The body is JSON for an API, never HTML: keep non-ASCII text as UTF-8 instead of \u escapes.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    private const int MaxCachedBuffer = 64 * 1024;

    [ThreadStatic]
    private static IdentifyEventWriter? cached;

    /// <summary>The length of <see cref="FormatTimestamp(DateTime, Span{byte})"/>'s text: <c>2023-12-14T16:07:33.571125Z</c>.</summary>
    private const int TimestampLength = 27;

    private readonly ArrayBufferWriter<byte> buffer = new(512);
    private readonly Utf8JsonWriter writer;
    private readonly byte[] timestamp = new byte[TimestampLength];
    private DateTime timestampOf = DateTime.MinValue;
    private bool traitsOpen;

    private IdentifyEventWriter()
    {
        writer = new Utf8JsonWriter(buffer, Options);
        FormatTimestamp(timestampOf, timestamp);
    }

    /// <summary>Starts an event; the writer is per thread and reused.</summary>
    public static IdentifyEventWriter Start(string userId, DateTime timestampUtc)
    {
        var instance = cached ??= new IdentifyEventWriter();
        instance.buffer.ResetWrittenCount();
        instance.writer.Reset(instance.buffer);
        instance.traitsOpen = false;
        instance.writer.WriteStartObject();
        instance.writer.WriteString("user_id"u8, userId);
        if (timestampUtc != instance.timestampOf)
        {
            FormatTimestamp(timestampUtc, instance.timestamp);
            instance.timestampOf = timestampUtc;
        }

        instance.writer.WriteString("timestamp"u8, instance.timestamp);
        return instance;
    }

    public static string FormatTimestamp(DateTime utc)
    {
        Span<byte> text = stackalloc byte[TimestampLength];
        FormatTimestamp(utc, text);
        return Encoding.ASCII.GetString(text);
    }

    /// <summary>
    /// ISO 8601 in UTC with microseconds and a <c>Z</c>. The round-trip format of a UTC time is culture-free and the
    /// runtime's fast path (a custom pattern is parsed on every call: half the time of starting an event); it has seven
    /// fraction digits, and the seventh is cut as the custom pattern's <c>ffffff</c> did.
    /// </summary>
    private static void FormatTimestamp(DateTime utc, Span<byte> destination)
    {
        Span<byte> roundTrip = stackalloc byte[TimestampLength + 1];
        DateTime.SpecifyKind(utc, DateTimeKind.Utc).TryFormat(roundTrip, out _, "O", CultureInfo.InvariantCulture);
        roundTrip[..(TimestampLength - 1)].CopyTo(destination);
        destination[TimestampLength - 1] = (byte)'Z';
    }

    /// <summary>Writes a trait; <see langword="null"/> values, and numbers JSON cannot hold (NaN, infinities), are left out.</summary>
    public void Trait(string key, TraitValueKind kind, object? value)
    {
        if (value is null or double and (double.NaN or double.PositiveInfinity or double.NegativeInfinity)
            or float and (float.NaN or float.PositiveInfinity or float.NegativeInfinity))
        {
            return;
        }

        if (!traitsOpen)
        {
            writer.WriteStartObject("traits"u8);
            traitsOpen = true;
        }

        writer.WritePropertyName(key);
        WriteValue(kind, value);
    }

    /// <summary>Writes a trait whose kind is found from the value's runtime type (explicit enqueue).</summary>
    public void Trait(string key, object? value)
    {
        if (value is null)
        {
            return;
        }

        var kind = MappingResolver.TraitKind(value.GetType())
            ?? throw new ArgumentException(
                $"The trait '{key}' has a value of type {value.GetType().Name}, which has no JSON form here. Use strings, numbers, booleans, dates, Guids, enums or collections of strings.",
                nameof(value));
        Trait(key, kind, value);
    }

    public OutboxMessage Finish(string userId, string? groupId, DateTime timestampUtc, OutboxEventKind kind)
    {
        if (traitsOpen)
        {
            writer.WriteEndObject();
        }

        if (groupId is not null)
        {
            writer.WriteStartObject("context"u8);
            writer.WriteString("group_id"u8, groupId);
            writer.WriteEndObject();
        }

        writer.WriteEndObject();
        writer.Flush();
        var bytes = buffer.WrittenSpan;
        var payload = Encoding.UTF8.GetString(bytes);
        var size = bytes.Length;
        if (buffer.Capacity > MaxCachedBuffer)
        {
            // One huge event must not pin its buffer to the thread for the life of the process.
            cached = null;
        }

        return new OutboxMessage
        {
            UserId = userId,
            GroupId = groupId,
            Kind = kind,
            Payload = payload,
            PayloadBytes = size,
            CreatedAt = timestampUtc,
            NextAttemptAt = timestampUtc,
            State = OutboxRowState.Pending,
        };
    }

    private void WriteValue(TraitValueKind kind, object value)
    {
        switch (kind)
        {
            case TraitValueKind.String:
                writer.WriteStringValue((string)value);
                break;
            case TraitValueKind.Boolean:
                writer.WriteBooleanValue((bool)value);
                break;
            case TraitValueKind.Number:
                WriteNumber(value);
                break;
            case TraitValueKind.DateTime:
                var dateTime = (DateTime)value;
                dateTime = dateTime.Kind switch
                {
                    DateTimeKind.Local => dateTime.ToUniversalTime(),
                    DateTimeKind.Unspecified => DateTime.SpecifyKind(dateTime, DateTimeKind.Utc),
                    _ => dateTime,
                };
                WriteRoundTrip(dateTime);
                break;
            case TraitValueKind.DateTimeOffset:
                WriteRoundTrip(((DateTimeOffset)value).UtcDateTime);
                break;
            case TraitValueKind.DateOnly:
                writer.WriteStringValue(((DateOnly)value).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
                break;
            case TraitValueKind.StringArray:
                writer.WriteStartArray();
                foreach (var item in (IEnumerable)value)
                {
                    if (item is string s)
                    {
                        writer.WriteStringValue(s);
                    }
                }

                writer.WriteEndArray();
                break;
            default:
                // TimeOnly's invariant default is a short pattern without seconds: write ISO 8601 instead.
                writer.WriteStringValue(value switch
                {
                    TimeOnly time => time.ToString("HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture),
                    IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                    _ => value.ToString(),
                });
                break;
        }
    }

    private void WriteRoundTrip(DateTime dateTime)
    {
        Span<byte> text = stackalloc byte[40];
        dateTime.TryFormat(text, out var written, "O", CultureInfo.InvariantCulture);
        writer.WriteStringValue(text[..written]);
    }

    private void WriteNumber(object value)
    {
        switch (value)
        {
            case int i: writer.WriteNumberValue(i); break;
            case long l: writer.WriteNumberValue(l); break;
            case short s: writer.WriteNumberValue(s); break;
            case byte b: writer.WriteNumberValue(b); break;
            case sbyte sb: writer.WriteNumberValue(sb); break;
            case uint ui: writer.WriteNumberValue(ui); break;
            case ulong ul: writer.WriteNumberValue(ul); break;
            case ushort us: writer.WriteNumberValue(us); break;
            case decimal m: writer.WriteNumberValue(m); break;
            case double d when double.IsFinite(d): writer.WriteNumberValue(d); break;
            case float f when float.IsFinite(f): writer.WriteNumberValue(f); break;
            default: writer.WriteNullValue(); break;
        }
    }
}
