using System.Text.Json.Serialization;

namespace Thrivestack.EfCore.Client;

/// <summary>Source-generated JSON for the API's responses: no reflection when reading them.</summary>
[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, NumberHandling = JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(IdentifyResponse))]
internal sealed partial class ThrivestackJsonContext : JsonSerializerContext;
