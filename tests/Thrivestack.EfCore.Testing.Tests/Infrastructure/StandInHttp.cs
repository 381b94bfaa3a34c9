using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Thrivestack.EfCore.Testing.Tests.Infrastructure;

/// <summary>Sends requests to a stand-in over real HTTP.</summary>
internal static class StandInHttp
{
    /// <summary>A POST of <paramref name="json"/> to the stand-in with its current token as a Bearer header.</summary>
    public static HttpRequestMessage Identify(ThrivestackStandIn standIn, string json, string contentType = "application/json")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, standIn.Endpoint)
        {
            Content = new ByteArrayContent(Encoding.UTF8.GetBytes(json)),
        };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", standIn.ApiToken);
        return request;
    }

    public static async Task<HttpResponseMessage> PostIdentifyAsync(this HttpClient client, ThrivestackStandIn standIn, string json)
    {
        using var request = Identify(standIn, json);
        return await client.SendAsync(request);
    }

    public static async Task<JsonElement> ReadJsonAsync(this HttpResponseMessage response)
    {
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return document.RootElement.Clone();
    }
}
