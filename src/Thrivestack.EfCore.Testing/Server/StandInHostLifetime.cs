using Microsoft.Extensions.Hosting;

namespace Thrivestack.EfCore.Testing.Server;

/// <summary>
/// A lifetime that does nothing. The default console lifetime would take over Ctrl+C and SIGTERM of the test process
/// that embeds the stand-in, and keep that process alive after it stopped the stand-in.
/// </summary>
internal sealed class StandInHostLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
