using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// The JSON arrays SQLite's dispatcher statements read with <c>json_each</c>: the ids a page acknowledges and the users in
/// flight. Written by hand instead of through <see cref="JsonSerializer"/>, whose reflection-based metadata costs a new
/// host tens of milliseconds of JIT before its first claim, and which trimming would warn about.
/// </summary>
internal static class JsonArrayText
{
    /// <summary><c>[1,2,3]</c>: numbers need no escaping.</summary>
    public static string Of(IReadOnlyCollection<long> ids)
    {
        var text = new StringBuilder(2 + (ids.Count * 8));
        text.Append('[');
        var first = true;
        foreach (var id in ids)
        {
            if (!first)
            {
                text.Append(',');
            }

            text.Append(id.ToString(CultureInfo.InvariantCulture));
            first = false;
        }

        return text.Append(']').ToString();
    }

    /// <summary><c>["a","b"]</c>, each string escaped as JSON requires.</summary>
    public static string Of(IReadOnlyCollection<string> values)
    {
        if (values.Count == 0)
        {
            return "[]";
        }

        var buffer = new ArrayBufferWriter<byte>(16 + (values.Count * 40));
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var value in values)
            {
                writer.WriteStringValue(value);
            }

            writer.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
