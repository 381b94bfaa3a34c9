using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// A real HTTP server on 127.0.0.1 in front of the stand-in: it forwards each request unless <see cref="Intercept"/>
/// answers it itself (a WAF, a server error one event causes, a wild Retry-After), and can hold an upstream answer
/// until the test lets it go (<see cref="Hold"/>).
/// </summary>
internal sealed class LoopbackGateway : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly HttpClient upstream = new();
    private readonly Uri target;
    private int requests;

    private LoopbackGateway(Uri target)
    {
        this.target = target;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        app = builder.Build();
        app.Run(HandleAsync);
    }

    public Uri Endpoint { get; private set; } = null!;

    /// <summary>Given the request body, returns an answer to give instead of forwarding, or null to forward.</summary>
    public Func<string, Answer?>? Intercept { get; set; }

    /// <summary>When set, a forwarded request's answer (already stored upstream) waits for this task before it is returned.</summary>
    public Task? Hold { get; set; }

    /// <summary>Completes when a forwarded request has been answered upstream and is being held.</summary>
    public TaskCompletionSource Holding { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Requests => Volatile.Read(ref requests);

    public static async Task<LoopbackGateway> StartAsync(Uri target)
    {
        var gateway = new LoopbackGateway(target);
        await gateway.app.StartAsync();
        var address = gateway.app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        gateway.Endpoint = new Uri(new Uri(address), target.PathAndQuery);
        return gateway;
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
        upstream.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref requests);
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        if (Intercept?.Invoke(body) is { } answer)
        {
            context.Response.StatusCode = answer.Status;
            if (answer.RetryAfter is { } retryAfter)
            {
                context.Response.Headers.RetryAfter = retryAfter;
            }

            await context.Response.WriteAsync(answer.Body, context.RequestAborted);
            return;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, target) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreach (var header in new[] { "Authorization", "x-api-key" })
        {
            if (context.Request.Headers.TryGetValue(header, out var value))
            {
                request.Headers.TryAddWithoutValidation(header, value.ToString());
            }
        }

        using var response = await upstream.SendAsync(request, CancellationToken.None);
        var content = await response.Content.ReadAsStringAsync(CancellationToken.None);
        if (Hold is { } hold)
        {
            Holding.TrySetResult();
            await hold.WaitAsync(context.RequestAborted);
        }

        context.Response.StatusCode = (int)response.StatusCode;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(content, context.RequestAborted);
    }

    public sealed record Answer(int Status, string Body = "{\"success\":false,\"message\":\"injected\"}", string? RetryAfter = null);
}
