using System.Globalization;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Thrivestack.EfCore.Mapping;

/// <summary>
/// A property that holds an id (user id or group id), how to write it as a string, and the longest id the model's outbox
/// stores (<see cref="OutboxTable.MaxIdLength"/>, known when the model is built, so a save does not look it up).
/// </summary>
internal sealed record IdMap(IProperty Property, ValueConverter? Converter, int MaxLength)
{
    /// <summary>Formats an id value in invariant culture; <see langword="null"/> or empty ids yield <see langword="null"/>.</summary>
    public string? Format(object? value)
    {
        if (value is not null && Converter is not null)
        {
            value = Converter.ConvertToProvider(value);
        }

        var text = value switch
        {
            null => null,
            string s => s,
            Guid g => g.ToString("D"),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString(),
        };
        return string.IsNullOrEmpty(text) ? null : text;
    }

    public static bool IsSupported(Type type) =>
        type == typeof(string) || type == typeof(Guid) || type == typeof(int) || type == typeof(long)
        || type == typeof(short) || type == typeof(byte) || type == typeof(uint) || type == typeof(ulong)
        || type == typeof(ushort) || type == typeof(decimal);
}
