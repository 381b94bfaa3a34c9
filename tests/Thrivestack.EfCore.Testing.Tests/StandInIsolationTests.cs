using System.Net;
using System.Net.Sockets;
using Thrivestack.EfCore.Testing.Tests.Infrastructure;

namespace Thrivestack.EfCore.Testing.Tests;

/// <summary>
/// docs/testing.md, "Good to know": the stand-in ignores the configuration of the process that hosts it
/// (<c>appsettings.json</c>, <c>ASPNETCORE_URLS</c>, <c>Kestrel</c> sections). The environment variables and the file
/// written here are the process's own, so these tests run alone.
/// </summary>
[Collection(nameof(StandInIsolationTests))]
public sealed class StandInIsolationTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly HttpClient client = new() { Timeout = Timeout.InfiniteTimeSpan };

    public void Dispose() => client.Dispose();

    [Fact]
    public async Task StartAsync_ProcessConfigurationNamesOtherEndpoints_ListensOnlyOnItsOwnLoopbackPort()
    {
        var fromUrls = FreePort();
        var fromEnvironment = FreePort();
        var fromFile = FreePort();
        var settingsFile = Path.Combine(AppContext.BaseDirectory, "appsettings.json");
        var wroteFile = !File.Exists(settingsFile);
        var variables = new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{fromUrls}",
            ["ASPNETCORE_Kestrel__Endpoints__FromEnvironment__Url"] = $"http://127.0.0.1:{fromEnvironment}",
        };
        var saved = variables.Keys.ToDictionary(k => k, Environment.GetEnvironmentVariable);
        try
        {
            foreach (var (name, value) in variables)
            {
                Environment.SetEnvironmentVariable(name, value);
            }

            if (wroteFile)
            {
                await File.WriteAllTextAsync(settingsFile, $"{{\"Kestrel\":{{\"Endpoints\":{{\"FromFile\":{{\"Url\":\"http://127.0.0.1:{fromFile}\"}}}}}}}}");
            }

            await using var standIn = await ThrivestackStandIn.StartAsync();
            using var response = await client.PostIdentifyAsync(standIn, IdentifyJson.Users(3));

            Assert.Equal("127.0.0.1", standIn.Endpoint.Host);
            Assert.DoesNotContain(standIn.Endpoint.Port, new[] { fromUrls, fromEnvironment, fromFile });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(3, standIn.AcceptedEventCount);
            Assert.False(await AcceptsAsync(fromUrls), $"Something listens on the port of ASPNETCORE_URLS ({fromUrls}).");
            Assert.False(await AcceptsAsync(fromEnvironment), $"Something listens on the port of the Kestrel endpoint of the environment ({fromEnvironment}).");
            Assert.False(wroteFile && await AcceptsAsync(fromFile), $"Something listens on the port of the Kestrel endpoint of appsettings.json ({fromFile}).");
        }
        finally
        {
            foreach (var (name, value) in saved)
            {
                Environment.SetEnvironmentVariable(name, value);
            }

            if (wroteFile)
            {
                File.Delete(settingsFile);
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static async Task<bool> AcceptsAsync(int port)
    {
        using var socket = new TcpClient();
        try
        {
            await socket.ConnectAsync(IPAddress.Loopback, port).WaitAsync(Patience);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

/// <summary>Runs <see cref="StandInIsolationTests"/> alone: they change the process's environment and its appsettings.json.</summary>
[CollectionDefinition(nameof(StandInIsolationTests), DisableParallelization = true)]
public sealed class StandInIsolationCollection
{
}
