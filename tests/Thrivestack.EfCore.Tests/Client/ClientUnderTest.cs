using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Thrivestack.EfCore.Client;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Telemetry;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Client;

/// <summary>A <see cref="ThrivestackClient"/> made exactly as the dispatcher makes it: from the library's own registration.</summary>
internal sealed class ClientUnderTest : IDisposable
{
    public const string Token = "tok-client-5d2a91";

    private readonly ServiceProvider provider;

    public ClientUnderTest(Uri endpoint, Action<ThrivestackOptions>? configure = null, Action<IServiceCollection>? services = null)
    {
        var collection = new ServiceCollection();
        services?.Invoke(collection);
        collection.AddThrivestackIdentify<TestDbContext>(o =>
        {
            o.Endpoint = endpoint;
            o.ApiToken = Token;
            o.RequestTimeout = TimeSpan.FromSeconds(20);
            o.LeaseDuration = TimeSpan.FromSeconds(30);
            o.MaxRequestRetries = 0;
            configure?.Invoke(o);
        });
        provider = collection.BuildServiceProvider();
        var name = ThrivestackRegistration.OptionsName<TestDbContext>();
        Options = provider.GetRequiredService<IOptionsMonitor<ThrivestackOptions>>().Get(name);
        Client = new ThrivestackClient(provider.GetRequiredService<IHttpClientFactory>(), name, Options, TimeProvider.System, provider.GetRequiredService<ThrivestackMetrics>());
    }

    public static byte[] Batch { get; } = Encoding.UTF8.GetBytes("""[{"user_id":"u1","timestamp":"2026-01-01T00:00:00Z"}]""");

    public ThrivestackOptions Options { get; }

    public ThrivestackClient Client { get; }

    public Task<SendResult> SendAsync() => Client.SendAsync(Batch, 1, 1, CancellationToken.None);

    public void Dispose() => provider.Dispose();
}
