using System.Buffers;
using System.Text.Json;

namespace Thrivestack.EfCore.Mapping;

/// <summary>One mapped trait as stored in the model: the JSON key and the property path ("Email", "Address.City").</summary>
internal sealed record TraitAnnotation(string Key, string Path)
{
    public static IReadOnlyList<TraitAnnotation> Parse(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return [];
        }

        using var document = JsonDocument.Parse(value);
        var traits = new List<TraitAnnotation>();
        foreach (var item in document.RootElement.EnumerateArray())
        {
            traits.Add(new TraitAnnotation(item[0].GetString()!, item[1].GetString()!));
        }

        return traits;
    }

    public static string Format(IEnumerable<TraitAnnotation> traits)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var trait in traits)
            {
                writer.WriteStartArray();
                writer.WriteStringValue(trait.Key);
                writer.WriteStringValue(trait.Path);
                writer.WriteEndArray();
            }

            writer.WriteEndArray();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
